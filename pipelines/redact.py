"""Stage `redact`: pseudonymise personal data in conversations, feedback and documents (Presidio)."""

from __future__ import annotations

import time

from llmops import workspace as ws
from llmops.jsonl import read_jsonl, write_json, write_jsonl
from llmops.pii import Redactor
from llmops.records import Conversation, Document, FeedbackEvent
from pipelines._stage import setup


def main() -> None:
    params, settings = setup("redact")
    start = time.perf_counter()
    redactor = Redactor.from_settings(params.redact, settings)
    convs = redactor.redact_conversations(read_jsonl(ws.CLEAN / "conversations.jsonl", Conversation), progress=True)
    events = redactor.redact_feedback(read_jsonl(ws.CLEAN / "feedback.jsonl", FeedbackEvent))
    docs = redactor.redact_documents(read_jsonl(ws.CLEAN / "documents.jsonl", Document))
    write_jsonl(ws.REDACTED / "conversations.jsonl", convs)
    write_jsonl(ws.REDACTED / "feedback.jsonl", events)
    write_jsonl(ws.REDACTED / "documents.jsonl", docs)
    stats = {**redactor.stats.as_dict(), "seconds": round(time.perf_counter() - start, 2)}
    write_json(ws.stage_metrics("redact"), stats)
    print(stats)


if __name__ == "__main__":
    main()
