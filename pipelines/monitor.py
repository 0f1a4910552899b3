"""Stage `monitor`: drift of the current batch against the reference window (conversations, embeddings,
production quality from the generation log), Evidently HTML + drift.json."""

from __future__ import annotations

import json

from llmops import workspace as ws
from llmops.index.embed import make_embedder
from llmops.jsonl import read_jsonl
from llmops.monitoring.monitor import monitor_batch
from llmops.records import Conversation, Document, FeedbackEvent
from pipelines._stage import setup


def main() -> None:
    params, settings = setup("monitor")
    cfg = params.monitor
    result = monitor_batch(
        read_jsonl(cfg.reference, Conversation),
        read_jsonl(ws.REDACTED / "conversations.jsonl", Conversation),
        cfg,
        ws.DRIFT_DIR,
        feedback=read_jsonl(ws.REDACTED / "feedback.jsonl", FeedbackEvent),
        reference_documents=read_jsonl(cfg.reference_documents, Document),
        current_documents=read_jsonl(ws.REDACTED / "documents.jsonl", Document),
        # the index's embedder (local or openai:), loaded only when embedding drift is on
        embedder=make_embedder(params.index.embedder, params.index, settings) if cfg.embedding_drift else None,
    )
    keys = ("drift_detected", "drift_share", "drifted_signals", "new_vocab_share", "current_rows")
    print(json.dumps({k: result[k] for k in keys}))


if __name__ == "__main__":
    main()
