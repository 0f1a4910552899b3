from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llmops.config import CleanParams
from llmops.data.clean import clean_conversations, clean_documents, normalize_text
from llmops.records import Conversation, Document, Turn


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  hello   world ", "hello world"),
        ("ﬁne\u200b print", "fine print"),  # NFKC ligature, zero-width space
        ("a\r\nb", "a\nb"),
        ("para one\n\n\n\npara two", "para one\n\npara two"),
        ("tab\there\x07", "tab here"),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def _conv(cid: str, *texts: str) -> Conversation:
    turns = [Turn(role="customer" if i % 2 == 0 else "agent", text=t) for i, t in enumerate(texts)]
    return Conversation(conversation_id=cid, channel="chat", created_at=datetime(2026, 1, 1, tzinfo=UTC), turns=turns)


def test_exact_duplicates_and_empty_conversations_are_removed() -> None:
    convs = [_conv("a", "Hi  there", "Hello"), _conv("b", "hi there", "hello"), _conv("c", "  ", "\u200b"), _conv("d", "other")]
    out, stats = clean_conversations(convs, CleanParams())
    assert [c.conversation_id for c in out] == ["a", "d"]
    assert stats.as_dict() == {"records_in": 4, "records_out": 2, "duplicates": 1, "emptied": 1}
    assert out[0].turns[0].text == "Hi there"


def test_documents_last_version_wins() -> None:
    docs = [Document(doc_id="x", text="old"), Document(doc_id="y", text="why"), Document(doc_id="x", text="new")]
    out, stats = clean_documents(docs, CleanParams())
    assert {d.doc_id: d.text for d in out} == {"x": "new", "y": "why"}
    assert stats.duplicates == 1
