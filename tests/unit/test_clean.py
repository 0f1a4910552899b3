from __future__ import annotations

import sys
import unicodedata
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
        ("4111\u00ad1111\u20601111\u20621111", "4111111111111111"),  # soft hyphen, word joiner, invisible times
        ("\u202egnp.exe\u202c file", "gnp.exe file"),  # right-to-left override + pop directional formatting
        ("\ufeffbom \u2066isolate\u2069 zw\u200d\u200cj", "bom isolate zwj"),
        ("tag\U000e0041\U000e007f chars", "tag chars"),  # Unicode tag characters (invisible text)
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
    assert stats.as_dict() == {"records_in": 4, "records_out": 2, "duplicates": 1, "emptied": 1, "format_chars": 1}
    assert out[0].turns[0].text == "Hi there"


def test_documents_last_version_wins() -> None:
    docs = [Document(doc_id="x", text="old"), Document(doc_id="y", text="why"), Document(doc_id="x", text="new")]
    out, stats = clean_documents(docs, CleanParams())
    assert {d.doc_id: d.text for d in out} == {"x": "new", "y": "why"}
    assert stats.duplicates == 1


def test_no_format_character_survives_clean() -> None:
    """Every Unicode Cf character, in turns, metadata and ids, is gone after cleaning (and counted)."""
    cf = [chr(cp) for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) == "Cf"]
    assert "\u202e" in cf and "\u00ad" in cf and "\u2060" in cf and len(cf) > 150
    text = "a".join(cf)
    conv = _conv("id\u200b-1", text).model_copy(update={"metadata": {"note": "x\u2060y", "tags": ["p\u00adq"]}})
    (out,), stats = clean_conversations([conv], CleanParams())
    assert not any(c in out.turns[0].text for c in cf)
    assert out.turns[0].text == "a" * (len(cf) - 1)
    assert out.conversation_id == "id-1" and out.metadata == {"note": "xy", "tags": ["pq"]}
    assert stats.format_chars == len(cf) + 3


def test_feedback_and_documents_lose_format_characters() -> None:
    from llmops.data.clean import clean_feedback
    from tests.factories import feedback_event

    (ev,), f_stats = clean_feedback([feedback_event("g\u200b1", "card 4111\u20601111", "ok\u202e")], CleanParams())
    assert (ev.generation_id, ev.query, ev.answer) == ("g1", "card 41111111", "ok") and f_stats.format_chars == 3
    (doc,), d_stats = clean_documents([Document(doc_id="d", text="x\u00ady", title="t\ufeff")], CleanParams())
    assert (doc.text, doc.title, d_stats.format_chars) == ("xy", "t", 2)
