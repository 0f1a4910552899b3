"""Stage `clean`: normalise text and remove exact duplicates.

Conversations are cleaned partition by partition, reusing what an earlier run made of unchanged partitions
and records (:mod:`llmops.data.incremental`); documents and feedback are small and cleaned whole."""

from __future__ import annotations

from llmops import workspace as ws
from llmops.data.clean import clean_documents, clean_feedback, clean_partitioned
from llmops.data.incremental import PartitionedOutput, RecordCache, cache_path, fingerprint
from llmops.jsonl import read_jsonl, write_json, write_jsonl
from llmops.records import Document, FeedbackEvent
from pipelines._stage import setup

CODE = ["pipelines/clean.py", "src/llmops/data/clean.py", "src/llmops/pii/normalize.py", "src/llmops/records.py"]


def main() -> None:
    params, settings = setup("clean")
    cfg = params.clean
    with RecordCache(cache_path(settings.home_dir, "clean")) as cache:
        out = PartitionedOutput(ws.CLEAN_CONVERSATIONS, fingerprint(cfg, CODE), digest=cache.digest)
        c_stats, counts = clean_partitioned(ws.RAW_CONVERSATIONS, out, cache, cfg)
    docs, d_stats = clean_documents(read_jsonl(ws.RAW / "documents.jsonl", Document), cfg)
    events, f_stats = clean_feedback(read_jsonl(ws.RAW / "feedback.jsonl", FeedbackEvent), cfg)
    write_jsonl(ws.CLEAN / "documents.jsonl", docs)
    write_jsonl(ws.CLEAN / "feedback.jsonl", events)
    stats = {
        "conversations": c_stats.as_dict() | counts.as_dict(),
        "documents": d_stats.as_dict(),
        "feedback": f_stats.as_dict(),
    }
    write_json(ws.stage_metrics("clean"), stats)
    print(stats)


if __name__ == "__main__":
    main()
