"""The canaries of tests/e2e/test_canaries.py through the library calls of the nightly, in process:
ingest -> clean -> redact (boundary) -> training-set build -> leak scan. Nothing planted may come out."""

from __future__ import annotations

import json

import pytest

from llmops.config import BaseParams, CleanParams, RedactParams, TrainsetParams
from llmops.data.clean import clean_conversations, clean_feedback
from llmops.data.ingest import parse_jsonl
from llmops.finetune.trainset import build_trainset
from llmops.pii.boundary import redact_batch
from llmops.pii.redact import Redactor
from llmops.pii.scan import Scanner, record_texts
from llmops.records import Conversation, FeedbackEvent
from tests.e2e.test_canaries import CANARIES, conversation_lines, feedback_lines

CATEGORIES = [c.category for c in CANARIES if c.where == "sinks"]


@pytest.fixture(scope="module")
def crossed() -> dict[str, object]:
    convs = parse_jsonl("\n".join(conversation_lines()).encode(), Conversation, "canaries")
    events = parse_jsonl("\n".join(feedback_lines()).encode(), FeedbackEvent, "canaries")
    assert len(convs.quarantined) == 1 and len(events.records) == 2  # the malformed line is held, whole
    assert "kestrel.moonfield" in convs.quarantined[0].raw
    clean_c, _ = clean_conversations(convs.records, CleanParams())
    clean_f, _ = clean_feedback(events.records, CleanParams())
    result = redact_batch(clean_c, clean_f, [], Redactor(RedactParams(), id_key=b"canary-key"))
    trainset = (
        build_trainset(result.conversations.records, result.feedback.records, [], TrainsetParams(min_support=0.0), BaseParams())
        if "min_support" in TrainsetParams.model_fields
        else build_trainset(result.conversations.records, result.feedback.records, [], TrainsetParams(), BaseParams())
    )
    outputs = [
        *(c.model_dump_json() for c in result.conversations.records),
        *(e.model_dump_json() for e in result.feedback.records),
        *(json.dumps(e.to_openai(), ensure_ascii=False) for e in (*trainset.train, *trainset.validation)),
        *(json.dumps(p) for p in trainset.provenance()),
        json.dumps(result.report()),
    ]
    return {"result": result, "trainset": trainset, "outputs": outputs}


@pytest.mark.parametrize("category", CATEGORIES)
def test_no_canary_crosses_the_boundary(crossed: dict[str, object], category: str, tmp_path: object) -> None:
    from tests.e2e.test_canaries import find_canaries

    canary = next(c for c in CANARIES if c.category == category)
    path = tmp_path / "out.jsonl"  # type: ignore[operator]
    path.write_text("\n".join(crossed["outputs"]), encoding="utf-8")  # type: ignore[arg-type]
    assert find_canaries([path], [canary]) == {}


def test_every_planted_record_is_accounted_for_and_the_trainset_is_clean(crossed: dict[str, object]) -> None:
    result, trainset = crossed["result"], crossed["trainset"]
    n_convs = len([c for c in CANARIES if c.turns])
    c = result.conversations  # type: ignore[attr-defined]
    assert c.records_in == n_convs == len(c.records) + len(c.quarantined)
    assert len(c.records) >= n_convs - 1, result.report()  # type: ignore[attr-defined]
    examples = [e.to_openai() for e in (*trainset.train, *trainset.validation)]  # type: ignore[attr-defined]
    assert examples, "the canary conversations built no training example: the test would prove nothing"
    scanner = Scanner(RedactParams())
    assert scanner.scan(record_texts([*examples, *trainset.provenance()], "trainset")) == []  # type: ignore[attr-defined]
