"""PII detection and pseudonymisation on table-driven cases: every entity type and format, negatives that
must stay, consistent pseudonyms, operators, garbage input. Real rules + real spaCy NER."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llmops.config import RedactParams
from llmops.pii.redact import Redactor
from llmops.pii.rules import iban_ok, luhn_ok, ssn_ok
from llmops.records import Conversation, Turn


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(RedactParams())


@pytest.mark.parametrize(
    ("text", "secret", "entity"),
    [
        ("write to jane.doe@example.com please", "jane.doe@example.com", "EMAIL_ADDRESS"),
        ("mail J.Smith+tag@mail.co.uk today", "J.Smith+tag@mail.co.uk", "EMAIL_ADDRESS"),
        ("card 4111 1111 1111 1111 was charged", "4111 1111 1111 1111", "CREDIT_CARD"),
        ("amex 378282246310005 declined", "378282246310005", "CREDIT_CARD"),
        ("pay with 5555-5555-5555-4444 please", "5555-5555-5555-4444", "CREDIT_CARD"),
        ("my iban is DE89 3704 0044 0532 0130 00", "DE89 3704 0044 0532 0130 00", "IBAN_CODE"),
        ("transfer to GB82WEST12345698765432 now", "GB82WEST12345698765432", "IBAN_CODE"),
        ("iban gb82west12345698765432 lower case", "gb82west12345698765432", "IBAN_CODE"),
        ("my SSN is 123-45-6789", "123-45-6789", "US_SSN"),
        ("social security 123456789", "123456789", "US_SSN"),
        ("call me at (212) 555-0198 tomorrow", "555-0198", "PHONE_NUMBER"),
        ("reach me on +44 20 7946 0958", "+44 20 7946 0958", "PHONE_NUMBER"),
        ("whatsapp 0049 30 901820", "0049 30 901820", "PHONE_NUMBER"),
        ("Mobile: 0688 843 79 56", "0688 843 79 56", "PHONE_NUMBER"),
        ("Desk: (898)666-3621x0135", "(898)666-3621x0135", "PHONE_NUMBER"),
        ("phone 3660170548", "3660170548", "PHONE_NUMBER"),
        ("server 192.168.10.25 is down", "192.168.10.25", "IP_ADDRESS"),
        ("ipv6 2001:db8:85a3::8a2e:370:7334 blocked", "2001:db8:85a3::8a2e:370:7334", "IP_ADDRESS"),
        ("see https://bob:hunter2@example.com/x", "bob:hunter2@example.com", "URL"),
        ("link https://app.example.com/reset?token=abc123def", "token=abc123def", "URL"),
        ("I live at 221 Baker Street, London", "221 Baker Street", "STREET_ADDRESS"),
        ("please ship to Koskikatu 25 Apt. 864", "Koskikatu 25", "STREET_ADDRESS"),
        ("send it to PSC 6477, Box 2981\nAPO AE 83700", "PSC 6477", "STREET_ADDRESS"),
        ("where is my order #A1234567?", "A1234567", "ACCOUNT_NUMBER"),
        ("account number 00123456789 is locked", "00123456789", "ACCOUNT_NUMBER"),
        ("my name is John Smith and I need help", "John Smith", "PERSON"),
        ("my name is anna kowalska", "anna kowalska", "PERSON"),
        ("Hi Maria,\nyour refund is on its way.", "Maria", "PERSON"),
        ("Thanks for waiting.\nRegards,\nPeter Novak", "Peter Novak", "PERSON"),
        ("please speak to Mrs. Olsen about it", "Olsen", "PERSON"),
        ("thanks @CinVakas for the tag", "@CinVakas", "SOCIAL_HANDLE"),
        ("He just turned 42 years old", "42", "AGE"),
        ("She was born on 7/14/1995 in a small town", "7/14/1995", "DATE_OF_BIRTH"),
        ("My zip code is 90210", "90210", "ZIP_CODE"),
        ("My driver's license number is F162823540116", "F162823540116", "US_DRIVER_LICENSE"),
    ],
)
def test_detects_and_replaces(redactor: Redactor, text: str, secret: str, entity: str) -> None:
    out = redactor.redact_texts([text])[0]
    assert secret not in out, out
    assert f"<{entity}_1>" in out, out


@pytest.mark.parametrize(
    "text",
    [
        "I ordered 3 items on Monday",
        "The package weighs 12 kg",
        "order of 250 units, 2 boxes",
        "The meeting was on 2024-03-15 at 10:30",
        "Our store reopened on 12/05/2023 after renovation",
        "Product code AB-1234 and SKU XJ-900 are in stock",
        "Version 2.4.1 fixes the login bug",
        "It costs 1,299.00 dollars, 30% off",
        "The delivery took 5 days",
        "",
    ],
)
def test_ordinary_text_is_untouched(redactor: Redactor, text: str) -> None:
    assert redactor.redact_texts([text]) == [text]


@pytest.mark.parametrize(
    ("value", "check", "ok"),
    [
        ("4111111111111111", luhn_ok, True),
        ("4111111111111112", luhn_ok, False),
        ("0000000000000000", luhn_ok, False),
        ("GB82WEST12345698765432", iban_ok, True),
        ("GB82WEST12345698765433", iban_ok, False),
        ("123-45-6789", ssn_ok, True),
        ("000-45-6789", ssn_ok, False),
        ("666-12-3456", ssn_ok, False),
    ],
)
def test_checksums(value: str, check: object, ok: bool) -> None:
    assert check(value) is ok  # type: ignore[operator]


def test_invalid_checksums_are_not_cards_and_only_iban_shaped_ibans(redactor: Redactor) -> None:
    """A number failing Luhn is no card; a value failing the IBAN check is an IBAN only in the full shape of an
    IBAN country's (a mistyped account is still someone's: tests/unit/test_pii_hostile.py)."""
    out = redactor.redact_texts(["ref 4111111111111112 and XX82WEST12345698765433"])[0]
    assert "<CREDIT_CARD" not in out and "<IBAN_CODE" not in out
    assert "<IBAN_CODE" in redactor.redact_texts(["to GB82WEST12345698765433"])[0]


def test_same_value_same_placeholder_within_a_conversation(redactor: Redactor) -> None:
    conv = Conversation(
        conversation_id="c",
        channel="email",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        turns=[
            Turn(role="customer", text="Mail a.b@example.org or c.d@example.org, card 4111 1111 1111 1111"),
            Turn(role="agent", text="We wrote to A.B@example.org. Card 4111-1111-1111-1111?"),
        ],
    )
    out = redactor.redact_conversations([conv])[0]
    assert out.turns[0].text == "Mail <EMAIL_ADDRESS_1> or <EMAIL_ADDRESS_2>, card <CREDIT_CARD_1>"
    assert out.turns[1].text.startswith("We wrote to <EMAIL_ADDRESS_1>.")
    # a new conversation starts numbering again
    other = redactor.redact_conversations([conv.model_copy(update={"conversation_id": "d", "turns": conv.turns[1:]})])[0]
    assert other.turns[0].text.startswith("We wrote to <EMAIL_ADDRESS_1>.")


@pytest.mark.parametrize(
    ("operator", "expected"),
    [("replace", "mail <EMAIL_ADDRESS> now"), ("redact", "mail  now"), ("mask", "mail ************* now")],
)
def test_presidio_operators(operator: str, expected: str) -> None:
    red = Redactor(RedactParams(operators={"EMAIL_ADDRESS": operator}, entities=["EMAIL_ADDRESS"]))
    assert red.redact_texts(["mail a@example.com now"]) == [expected]


def test_hash_operator_hides_the_value() -> None:
    red = Redactor(RedactParams(operators={"EMAIL_ADDRESS": "hash"}, entities=["EMAIL_ADDRESS"]))
    (a,) = red.redact_texts(["a@example.com"])
    assert "a@example.com" not in a and len(a) == 64  # sha256 hex (Presidio salts it)


@pytest.mark.parametrize("size", [100_000, pytest.param(1_000_000, marks=pytest.mark.slow)])
def test_garbage_input_does_not_crash(redactor: Redactor, size: int) -> None:
    big = ("lorem ipsum 12 34 " * (size // 17))[:size] + " card 4111 1111 1111 1111"
    binary = bytes(range(256)).decode("latin-1")
    texts = ["", "   ", "\x00\x01\x02", binary, "日本語のテキスト test@example.com Ивана Петрова", "٣٤٥ مرحبا 😀" * 50, big]
    out = redactor.redact_texts(texts)
    assert len(out) == len(texts)
    assert "test@example.com" not in out[4]
    assert out[6].endswith("card <CREDIT_CARD_1>")


def test_presidio_engine_still_works() -> None:
    red = Redactor(RedactParams(engine="presidio", entities=["EMAIL_ADDRESS", "CREDIT_CARD"]))
    assert red.redact_texts(["x@example.com pays 4111 1111 1111 1111"]) == ["<EMAIL_ADDRESS_1> pays <CREDIT_CARD_1>"]


@pytest.mark.slow  # spawns two workers that each load spaCy
def test_process_pool_gives_the_same_spans_as_one_process() -> None:
    from llmops.pii.detect import FastAnalyzer

    texts = [f"Hi Maria, card 4111 1111 1111 1111, mail m{i}@example.com, order #A12345{i}" for i in range(40)]
    single = FastAnalyzer(RedactParams(workers=1)).analyze(texts)
    pooled = FastAnalyzer(RedactParams(workers=2, parallel_min_texts=10, batch_size=8))
    try:
        assert pooled.analyze(texts) == single
    finally:
        pooled.close()


def test_name_windows_keep_offsets_and_skip_text_without_candidates() -> None:
    from llmops.pii.detect import _name_windows

    filler = "the parcel was left at the door and nobody answered the bell " * 8
    text = filler + "then Maria Gonzalez called back " + filler
    windows = _name_windows(text, 3)
    assert len(windows) == 1
    offset, piece = windows[0]
    assert text[offset : offset + len(piece)] == piece
    assert "Maria Gonzalez" in piece and len(piece) < len(text) / 4
    assert _name_windows("please refund the order, it never arrived", 6) == []  # no candidate: no NER at all
    assert _name_windows(text, 0) == [(0, text)]  # 0 turns windowing off


def test_windowed_ner_finds_the_same_names_as_whole_text_ner() -> None:
    from llmops.pii.detect import FastAnalyzer

    filler = "i ordered two blue cups and the box arrived empty so i would like a refund for the order please. "
    texts = [
        filler * 5 + "Regards, Joakim Westgard",
        "Hello, I am Priya Raman and I live in Toronto. " + filler * 3 + "Priya",
        filler * 2 + "It was sent from Chicago, Illinois on Monday. " + filler * 2,  # a window mid-text
    ]
    ents = ["PERSON", "LOCATION"]
    whole = FastAnalyzer(RedactParams(workers=1, ner_context_words=0, entities=ents)).analyze(texts)
    windowed = FastAnalyzer(RedactParams(workers=1, entities=ents)).analyze(texts)
    assert windowed == whole
    assert {texts[0][s.start : s.end] for s in windowed[0]} >= {"Joakim Westgard"}
    assert {texts[2][s.start : s.end] for s in windowed[2]} >= {"Chicago", "Illinois"}  # offsets map back
