"""Stage `monitor`: drift of the current batch against the reference window (conversations, embeddings,
production quality from the generation log), Evidently HTML + drift.json.

The current batch is what arrived since the last monitored run (``monitor.current_days`` days on a first
run), read from the day partitions it lies in; below ``monitor.min_current_rows`` the conversation drift
check is skipped with its reason (the watermark stays, so the next run sees these rows too). What does not
depend on the batch is not redone each night: the reference window's and the documents' vectors are cached
(``$LLMOPS_HOME/monitor/embeddings.sqlite``, the model loads only for texts not in it), and the document drift
and production-quality results are kept while their inputs hold (``llmops.monitoring.monitor``)."""

from __future__ import annotations

import json

from llmops import workspace as ws
from llmops.index.embed import Embedder, make_embedder
from llmops.jsonl import read_jsonl
from llmops.monitoring.embeddings import CachedEmbedder
from llmops.monitoring.monitor import advance_watermark, current_window, embedder_space, monitor_batch
from llmops.records import Conversation, Document, FeedbackEvent
from pipelines._stage import setup


def main() -> None:
    params, settings = setup("monitor")
    cfg = params.monitor
    state = settings.path("monitor", "window.sqlite")
    window = current_window(ws.REDACTED_CONVERSATIONS, state, cfg)
    embedder = None
    if cfg.embedding_drift:
        # the index's embedder (local or openai:), loaded only for texts whose vectors are not cached
        # (the reference window and the documents are embedded once, not every night)
        def make() -> Embedder:
            return make_embedder(params.index.embedder, params.index, settings)

        embedder = CachedEmbedder(make, embedder_space(params.index.embedder), state.with_name("embeddings.sqlite"))
    try:
        result = monitor_batch(
            read_jsonl(cfg.reference, Conversation),
            window.rows,
            cfg,
            ws.DRIFT_DIR,
            feedback=read_jsonl(ws.REDACTED / "feedback.jsonl", FeedbackEvent),
            reference_documents=read_jsonl(cfg.reference_documents, Document),
            current_documents=read_jsonl(ws.REDACTED / "documents.jsonl", Document),
            embedder=embedder,
            window=window.as_dict(),
            state_dir=state.parent,
        )
    finally:
        if embedder is not None:
            embedder.close()
    if result.skipped is None:
        advance_watermark(state, window)
    keys = ("drift_detected", "drift_share", "drifted_signals", "new_vocab_share", "current_rows", "skipped", "window")
    body = result.as_dict()
    print(json.dumps({k: body.get(k) for k in keys}))
    if embedder is not None:
        print(
            json.dumps({"vectors": {"embedded": embedder.embedded, "reused": embedder.reused, "model_loaded": embedder.loaded}})
        )


if __name__ == "__main__":
    main()
