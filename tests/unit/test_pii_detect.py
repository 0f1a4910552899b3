"""Adversarial canaries for the detector: hostile characters, obfuscation, lower-case chat, placeholders and
whole-value spans. All values are fictitious. Real rules + real spaCy NER (one module-scoped analyzer)."""

from __future__ import annotations

import itertools
import unicodedata

import pytest

from llmops.config import RedactParams
from llmops.pii.normalize import (
    INERT,
    INVISIBLE_RANGES,
    INVISIBLE_UNICODE_VERSION,
    is_invisible,
    scan_invisible,
    shadow,
    strip_invisible,
)
from llmops.pii.redact import Redactor
from llmops.pii.spans import Span, consolidate

WJ, SHY, ZWSP, RLO, PDF, BOM = "\u2060", "\u00ad", "\u200b", "\u202e", "\u202c", "\ufeff"
FULLWIDTH_SSN = "\uff15\uff13\uff16-\uff12\uff12-\uff18\uff17\uff11\uff14"
SPELLED = "five five five, zero one nine eight, four four two"


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(RedactParams(workers=1))


# (text, the whole value that must disappear, its type)
CANARIES = [
    # invisible characters inside the value: the span covers them too
    (f"card 4111{WJ}1111{WJ}1111{WJ}1111 was charged", f"4111{WJ}1111{WJ}1111{WJ}1111", "CREDIT_CARD"),
    (f"card 5555{SHY}5555{SHY}5555{SHY}4444 please", f"5555{SHY}5555{SHY}5555{SHY}4444", "CREDIT_CARD"),
    (f"call me on 415{SHY}555{SHY}0132 tonight", f"415{SHY}555{SHY}0132", "PHONE_NUMBER"),
    (f"it is 415{WJ}555{WJ}0132, ok", f"415{WJ}555{WJ}0132", "PHONE_NUMBER"),  # no cue word: as "415 555 0132"
    (f"phone: +44{ZWSP} 20 7946{WJ} 0958", f"+44{ZWSP} 20 7946{WJ} 0958", "PHONE_NUMBER"),
    (f"mail {RLO}kaplowitz.q@example.org{PDF} now", "kaplowitz.q@example.org", "EMAIL_ADDRESS"),
    (f"my ssn is 536{WJ}-22-{ZWSP}8714", f"536{WJ}-22-{ZWSP}8714", "US_SSN"),
    (
        "ssn \uff15\uff13\uff16-\uff12\uff12-\uff18\uff17\uff11\uff14 ok",
        "\uff15\uff13\uff16-\uff12\uff12-\uff18\uff17\uff11\uff14",
        "US_SSN",
    ),
    ("ssn 536\u201122\u20118714 (non-breaking hyphens)", "536\u201122\u20118714", "US_SSN"),
    # SSN is its own type and wins over an address reading of "SSN 536"
    ("We verified SSN 536-22-8714 today", "536-22-8714", "US_SSN"),
    ("We verified SSN 536 22 8714 today", "536 22 8714", "US_SSN"),
    # obfuscated e-mails
    ("email zorblat99 at gmail dot com thanks", "zorblat99 at gmail dot com", "EMAIL_ADDRESS"),
    ("write to q.vandermeer [at] example (dot) org", "q.vandermeer [at] example (dot) org", "EMAIL_ADDRESS"),
    ("reach me: wobbleton(at)example.net", "wobbleton(at)example.net", "EMAIL_ADDRESS"),
    ("mail zorblat99 at hotmail.com", "zorblat99 at hotmail.com", "EMAIL_ADDRESS"),
    ("mail me @ zorblat99 @ example . com", "zorblat99 @ example . com", "EMAIL_ADDRESS"),
    # split and spelled phones
    ("phone 415 . 555 . 0132", "415 . 555 . 0132", "PHONE_NUMBER"),
    ("call 4-1-5-5-5-5-0-1-3-2 after six", "4-1-5-5-5-5-0-1-3-2", "PHONE_NUMBER"),
    (
        "call five five five, zero one nine eight, four four two",
        "five five five, zero one nine eight, four four two",
        "PHONE_NUMBER",
    ),
    ("my number is four one five 555 oh one three two", "four one five 555 oh one three two", "PHONE_NUMBER"),
    # lower-case addresses
    ("my address is 1423 quimbly road apt 5b austin tx 78701", "1423 quimbly road apt 5b austin tx 78701", "STREET_ADDRESS"),
    ("ship it to 88 lantern hill drive, springfield il 62704", "88 lantern hill drive, springfield il 62704", "STREET_ADDRESS"),
    ("send it to 17 old orchard street please", "17 old orchard street", "STREET_ADDRESS"),
    # lower-case names in chat
    ("Thanks maria gonzalez, your refund is on its way", "maria gonzalez", "PERSON"),
    ("i'm maria and my parcel is late", "maria", "PERSON"),
    ("my name is john smith", "john smith", "PERSON"),
    ("hi, this is priya from the billing team", "priya", "PERSON"),
    ("ok thanks kelsey, bye", "kelsey", "PERSON"),
    ("Thanks for the details. ^Shivangi", "Shivangi", "PERSON"),
]


@pytest.mark.parametrize(("text", "value", "entity"), CANARIES)
def test_canary_is_redacted_whole(redactor: Redactor, text: str, value: str, entity: str) -> None:
    out = redactor.redact_texts([text])[0]
    assert value not in out, out
    assert f"<{entity}_1>" in out, out
    # not one digit or letter of the value is left beside the placeholder (whole-value spans)
    start = text.index(value)
    assert out.startswith(text[:start]) and out.endswith(text[start + len(value) :]), out


@pytest.mark.parametrize(
    "text",
    [
        "Hi <PERSON_1>, call <PHONE_NUMBER_1> about your order",
        "<EMAIL_ADDRESS_1> <CREDIT_CARD_2> <US_SSN_1> <STREET_ADDRESS_3>",
        "Log in to {{Website Name}} and open {{Order Number}} under {{Customer Support Phone Number}}",
        "Your card <CREDIT_CARD> was charged; write to <EMAIL_ADDRESS>",
    ],
)
def test_placeholders_are_never_detected(redactor: Redactor, text: str) -> None:
    assert redactor.detect([text])[0] == []


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        ("your order 88123456 and <PHONE_NUMBER_1> are noted", "88123456", "ACCOUNT_NUMBER"),
        ("ref 4111 1111 1111 1111 beside <PERSON_1>", "4111 1111 1111 1111", "CREDIT_CARD"),
    ],
)
def test_values_beside_placeholders_are_found_and_placeholders_kept(
    redactor: Redactor, text: str, value: str, entity: str
) -> None:
    out = redactor.redact_texts([text])[0]
    assert value not in out and f"<{entity}_1>" in out
    assert ("<PHONE_NUMBER_1>" in out) == ("<PHONE_NUMBER_1>" in text) and ("<PERSON_1>" in out) == ("<PERSON_1>" in text)


@pytest.mark.parametrize(
    "text",
    [
        "order 20231115 is next to <PHONE_NUMBER_1>",  # the placeholder's words are no phone cue
        "Your order {{Order Number}} ships from 12 to 14 days after <PHONE_NUMBER_2>",
        "ticket 55512345678 <PHONE_NUMBER_1> <PHONE_NUMBER_2>",
    ],
)
def test_leak_gate_does_not_fail_on_placeholder_neighbours(redactor: Redactor, text: str) -> None:
    from llmops.pii.detect import FastAnalyzer

    assert isinstance(redactor.analyzer, FastAnalyzer)
    redacted = redactor.redact_texts([text])
    assert redactor.analyzer.scan(redacted) == [[]]


def test_scan_uses_the_scan_entities_and_threshold(redactor: Redactor) -> None:
    text = "card 4111 1111 1111 1111, thanks maria"
    (found,) = redactor.analyzer.scan([text])
    assert [text[s.start : s.end] for s in found] == ["4111 1111 1111 1111"]  # PERSON is not a scan entity
    assert all(s.score >= redactor.cfg.scan_threshold for s in found)


@pytest.mark.parametrize(
    "text",
    [
        "5 minutes down the road there is a shop",
        "my 2 hard drive failed",
        "look at google.com for help",
        "thanks @AppleSupport. It works now",
        "Keep us posted! We will check the links",
        "Please wait 24 hours before trying again",
        "the story of my order is a long one",
    ],
)
def test_ordinary_informal_text_stays(redactor: Redactor, text: str) -> None:
    spans = redactor.detect([text], [e for e in redactor.cfg.entities if e not in {"SOCIAL_HANDLE", "URL"}])[0]
    assert spans == [], [(s.entity_type, text[s.start : s.end]) for s in spans]


@pytest.mark.parametrize(
    ("ch", "invisible"),
    [
        *[(ch, True) for ch in (WJ, SHY, ZWSP, RLO, PDF, BOM, "\u2066", "\u2069", "\u200d")],
        *[(ch, False) for ch in ("a", " ", "\u00e9", "\uff15", "-")],
    ],
)
def test_is_invisible(ch: str, invisible: bool) -> None:
    assert is_invisible(ch) is invisible


def test_listed_invisible_code_points_are_those_a_scan_finds() -> None:
    """The shipped ranges (no scan of 1.1M code points per process) say exactly what ``is_invisible`` says."""
    if unicodedata.unidata_version != INVISIBLE_UNICODE_VERSION:
        pytest.skip(f"Unicode {unicodedata.unidata_version}: strip_invisible scans instead of using the list")
    assert [c for a, b in INVISIBLE_RANGES for c in range(a, b + 1)] == scan_invisible()


def test_strip_invisible() -> None:
    assert strip_invisible(f"a{WJ}b{SHY}c{RLO}d{PDF}e{BOM}f\u2066g\u2069") == "abcdefg"
    assert strip_invisible("plain ascii") == "plain ascii"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", "plain text"),
        (f"41{WJ}11", "41 11"),  # an invisible separator between digit groups reads as a space
        (f"Ma{ZWSP}ria", "Maria"),
        ("\uff14\uff11", "41"),
        ("536\u201122", "536-22"),
        ("call <PHONE_NUMBER_1> now", f"call {INERT} now"),
        ("see {{Order Number}}.", f"see {INERT}."),
        ("\ufb01ne", "fine"),  # ligature: one original character, two shadow characters
    ],
)
def test_shadow_text_and_offsets(text: str, expected: str) -> None:
    sh = shadow(text)
    assert sh.text == expected
    if sh.offsets is not None:
        assert len(sh.offsets) == len(sh.text) + 1 and sh.offsets[-1] == len(text)
        assert list(sh.offsets) == sorted(sh.offsets)
    # every shadow span maps back to an original span holding the same visible characters
    for start in range(len(sh.text)):
        for end in range(start + 1, len(sh.text) + 1):
            a, b = sh.to_original(start, end)
            assert 0 <= a < b <= len(text)
            if INERT not in sh.text[start:end]:  # the original piece holds the shadow piece (a folded char whole)
                assert sh.text[start:end].strip() in shadow(text[a:b]).text


@pytest.mark.parametrize(
    ("text", "spans", "expected"),
    [
        # a validated identifier beats an overlapping looser type
        ("SSN 536-22-8714", [Span("STREET_ADDRESS", 0, 7, 0.75), Span("US_SSN", 4, 15, 0.7)], [("US_SSN", 4, 15)]),
        # equal rank: the union, with the stronger type
        ("Maria Gonzalez Lopez", [Span("PERSON", 0, 14, 0.7), Span("LOCATION", 6, 20, 0.5)], [("PERSON", 0, 20)]),
        # a span cut inside a word grows to the whole word
        ("call 5550198x12", [Span("PHONE_NUMBER", 5, 12, 0.7)], [("PHONE_NUMBER", 5, 15)]),
        # nested spans: the outer one only
        (
            "card 4111 1111 1111 1111",
            [Span("CREDIT_CARD", 5, 24, 0.9), Span("PHONE_NUMBER", 10, 19, 0.5)],
            [("CREDIT_CARD", 5, 24)],
        ),
    ],
)
def test_consolidate_gives_whole_non_overlapping_values(
    text: str, spans: list[Span], expected: list[tuple[str, int, int]]
) -> None:
    assert [(s.entity_type, s.start, s.end) for s in consolidate(text, spans)] == expected


def test_spans_are_sorted_disjoint_and_inside_the_original(redactor: Redactor) -> None:
    texts = [t for t, _, _ in CANARIES]
    for text, spans in zip(texts, redactor.detect(texts), strict=True):
        assert spans, text
        assert all(0 <= s.start < s.end <= len(text) for s in spans)
        assert all(a.end <= b.start for a, b in itertools.pairwise(spans)), spans


@pytest.mark.slow  # spawns two workers that each load spaCy and the name lexicon
def test_process_pool_maps_hostile_text_like_one_process() -> None:
    from llmops.pii.detect import FastAnalyzer

    texts = [t for t, _, _ in CANARIES] * 3
    single = FastAnalyzer(RedactParams(workers=1)).analyze(texts)
    pooled = FastAnalyzer(RedactParams(workers=2, parallel_min_texts=10, batch_size=8))
    try:
        assert pooled.analyze(texts) == single
    finally:
        pooled.close()
