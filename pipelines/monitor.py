"""Stage `monitor`: drift of the current batch against the reference window (conversations, embeddings,
production quality from the generation log), Evidently HTML + drift.json.

The current batch is what arrived since the last monitored run (``monitor.current_days`` days on a first
run), read from the day partitions it lies in; below ``monitor.min_current_rows`` the conversation drift
check is skipped with its reason (the watermark stays, so the next run sees these rows too)."""

from __future__ import annotations

import json

from llmops import workspace as ws
from llmops.index.embed import make_embedder
from llmops.jsonl import read_jsonl
from llmops.monitoring.monitor import advance_watermark, current_window, monitor_batch
from llmops.records import Conversation, Document, FeedbackEvent
from pipelines._stage import setup


def main() -> None:
    params, settings = setup("monitor")
    cfg = params.monitor
    state = settings.path("monitor", "window.sqlite")
    window = current_window(ws.REDACTED_CONVERSATIONS, state, cfg)
    result = monitor_batch(
        read_jsonl(cfg.reference, Conversation),
        window.rows,
        cfg,
        ws.DRIFT_DIR,
        feedback=read_jsonl(ws.REDACTED / "feedback.jsonl", FeedbackEvent),
        reference_documents=read_jsonl(cfg.reference_documents, Document),
        current_documents=read_jsonl(ws.REDACTED / "documents.jsonl", Document),
        # the index's embedder (local or openai:), loaded only when embedding drift is on
        embedder=make_embedder(params.index.embedder, params.index, settings) if cfg.embedding_drift else None,
        window=window.as_dict(),
    )
    if "skipped" not in result:
        advance_watermark(state, window)
    keys = ("drift_detected", "drift_share", "drifted_signals", "new_vocab_share", "current_rows", "skipped", "window")
    print(json.dumps({k: result.get(k) for k in keys}))


if __name__ == "__main__":
    main()
