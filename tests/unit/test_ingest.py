"""Bad input is quarantined with a reason and counted: in = out + quarantined."""

from __future__ import annotations

import json

import pytest

from llmops.data.ingest import parse_jsonl
from llmops.data.quarantine import original
from llmops.records import Conversation, Document, FeedbackEvent

GOOD = {
    "conversation_id": "c1",
    "channel": "chat",
    "created_at": "2026-03-01T10:00:00Z",
    "turns": [{"role": "customer", "text": "hi"}, {"role": "agent", "text": "hello"}],
}


def _line(obj: object) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"conversation_id": "c2", "channel": "chat"', "malformed JSON"),
        (_line({k: v for k, v in GOOD.items() if k != "turns"}), "turns: Field required"),
        (_line({**GOOD, "turns": []}), "turns: List should have at least 1 item"),
        (_line({**GOOD, "turns": [{"role": "robot", "text": "x"}]}), "turns.0.role"),
        (_line({**GOOD, "created_at": "yesterday"}), "created_at"),
        (_line({**GOOD, "surprise": 1}), "surprise: Extra inputs are not permitted"),
        (_line({**GOOD, "jane.doe@example.com": 1}), "<key>: Extra inputs are not permitted"),
        (_line([1, 2, 3]), "expected a JSON object, got list"),
        (b'{"conversation_id": "c3", "text": "caf\xe9"}', "not UTF-8"),
    ],
)
def test_bad_line_is_quarantined_with_reason(raw: bytes, reason: str) -> None:
    data = _line(GOOD) + b"\n" + raw + b"\n"
    result = parse_jsonl(data, Conversation, source="batch.jsonl")
    assert [c.conversation_id for c in result.records] == ["c1"]
    assert len(result.quarantined) == 1
    q = result.quarantined[0]
    assert reason in q.reason and "example.com" not in q.reason  # a reason never repeats input values
    assert q.line_no == 2 and q.source == "batch.jsonl"


def test_counts_balance_on_mixed_batch() -> None:
    lines = [_line(GOOD), b"not json", b"", _line({**GOOD, "conversation_id": "c9"}), b"\xff\xfe", _line({})]
    result = parse_jsonl(b"\n".join(lines), Conversation, source="s")
    counts = result.counts()
    assert counts == {"in": 5, "out": 2, "quarantined": 3}
    assert counts["in"] == counts["out"] + counts["quarantined"]


def test_huge_and_non_utf8_lines_are_kept_whole_in_quarantine() -> None:
    huge = b'{"doc_id": "d", "text": ' + b'"' + b"x" * 1_000_000  # unterminated 1 MB string
    latin1 = '{"doc_id": "e", "text": "café"}'.encode("latin-1")
    result = parse_jsonl(huge + b"\n" + latin1, Document, source="s")
    assert [original(q) for q in result.quarantined] == [huge, latin1]  # byte for byte, nothing truncated
    assert result.quarantined[1].raw_encoding == "base64"


def test_feedback_rating_must_be_in_range() -> None:
    event = {
        "generation_id": "g",
        "ts": "2026-01-01T00:00:00Z",
        "query": "q",
        "answer": "a",
        "model_id": "m",
        "index_version": "v",
        "data_rev": "r",
        "latency_ms": 1,
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "rating": 5,
    }
    result = parse_jsonl(_line(event), FeedbackEvent, source="s")
    assert result.records == [] and "rating" in result.quarantined[0].reason
