"""Real Presidio + spaCy redaction on table-driven cases (issue #3 deepens this)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llmops.config import RedactParams
from llmops.pii import Redactor
from llmops.records import Conversation, Turn


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(RedactParams())


@pytest.mark.parametrize(
    ("text", "secret", "placeholder"),
    [
        ("write to jane.doe@example.com please", "jane.doe@example.com", "<EMAIL_ADDRESS_1>"),
        ("card 4111 1111 1111 1111 was charged", "4111 1111 1111 1111", "<CREDIT_CARD_1>"),
        ("my name is John Smith and I need help", "John Smith", "<PERSON_1>"),
        ("thanks @CinVakas for the tag", "@CinVakas", "<SOCIAL_HANDLE_1>"),
        ("call me at (212) 555-0198 tomorrow", "555-0198", "<PHONE_NUMBER_1>"),
    ],
)
def test_detects_and_replaces(redactor: Redactor, text: str, secret: str, placeholder: str) -> None:
    out = redactor.redact_texts([text])[0]
    assert secret not in out
    assert placeholder in out


@pytest.mark.parametrize("text", ["I ordered 3 items on Monday", "The package weighs 12 kg", ""])
def test_ordinary_text_is_untouched(redactor: Redactor, text: str) -> None:
    assert redactor.redact_texts([text]) == [text]


def test_same_value_same_placeholder_within_a_conversation(redactor: Redactor) -> None:
    conv = Conversation(
        conversation_id="c",
        channel="email",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        turns=[
            Turn(role="customer", text="Mail a.b@example.org or c.d@example.org"),
            Turn(role="agent", text="We wrote to a.b@example.org."),
        ],
    )
    out = redactor.redact_conversations([conv])[0]
    assert out.turns[0].text == "Mail <EMAIL_ADDRESS_1> or <EMAIL_ADDRESS_2>"
    assert out.turns[1].text == "We wrote to <EMAIL_ADDRESS_1>."


def test_garbage_input_does_not_crash(redactor: Redactor) -> None:
    texts = ["", "\x00\x01\x02", "日本語のテキスト test@example.com", "a" * 200_000]
    out = redactor.redact_texts(texts)
    assert len(out) == 4 and "test@example.com" not in out[2]
