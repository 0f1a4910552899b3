"""Stage `trainset`: chat-format fine-tuning data from redacted conversations + curated feedback."""

from __future__ import annotations

from llmops import workspace as ws
from llmops.finetune.trainset import build_trainset, input_revision
from llmops.jsonl import read_jsonl, write_json, write_jsonl
from llmops.pii.scan import scan_records
from llmops.records import Conversation, EvalQuestion, FeedbackEvent
from pipelines._stage import setup


def main() -> None:
    params, _ = setup("trainset")
    inputs = [ws.REDACTED / "conversations.jsonl", ws.FEEDBACK / "curated.jsonl", params.evaluate.questions]
    result = build_trainset(
        read_jsonl(inputs[0], Conversation),
        read_jsonl(inputs[1], FeedbackEvent),
        read_jsonl(inputs[2], EvalQuestion),
        params.trainset,
        params.base,
    )
    # Leak gate: nothing is published if personal data survived the redact stage.
    examples = [e.to_openai() for e in (*result.train, *result.validation)]
    scan_records([*examples, *result.provenance()], params.redact, "the training set (provenance included)")
    write_jsonl(ws.TRAINSET / "train.jsonl", (e.to_openai() for e in result.train))
    write_jsonl(ws.TRAINSET / "validation.jsonl", (e.to_openai() for e in result.validation))
    write_jsonl(ws.TRAINSET / "provenance.jsonl", result.provenance())
    stats = result.stats() | input_revision(inputs)
    write_json(ws.stage_metrics("trainset"), stats)
    print(stats)


if __name__ == "__main__":
    main()
