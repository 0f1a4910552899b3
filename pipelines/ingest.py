"""Stage `ingest`: read raw sources (local or s3://), validate contracts, quarantine bad records (whole,
local only, sealed with the vault key when one is set).

Conversations land in day partitions (``data/raw/conversations/<created day>.jsonl``) and only lines not
seen by an earlier run are validated (:mod:`llmops.data.incremental`); documents and feedback are small
and read whole."""

from __future__ import annotations

from llmops import workspace as ws
from llmops.data.incremental import RecordCache, cache_path, fingerprint
from llmops.data.ingest import ingest, ingest_appended, ingest_partitioned
from llmops.data.quarantine import QuarantineWriter, write_quarantine
from llmops.jsonl import write_json, write_jsonl
from llmops.records import Document, FeedbackEvent, Quarantined
from llmops.storage import store_for
from pipelines._stage import setup

CODE = ["pipelines/ingest.py", "src/llmops/data/ingest.py", "src/llmops/records.py"]


def main() -> None:
    params, settings = setup("ingest")
    key = settings.pii_vault_key.get_secret_value() if settings.pii_vault_key else None  # seals the quarantine
    counts = {}
    uri = params.ingest.conversations
    store = store_for(uri, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)
    fp, held_path = fingerprint({}, CODE), ws.QUARANTINE / "conversations.jsonl"
    fresh: list[Quarantined] = []
    with RecordCache(cache_path(settings.home_dir, "ingest")) as cache:
        # An append-only source: only its new bytes are read (the quarantine keeps its earlier records).
        result = ingest_appended(uri, store, ws.RAW_CONVERSATIONS, fresh.append, cache, fp)
        held = QuarantineWriter(held_path, key)

        def report(q: Quarantined) -> None:
            print(f"quarantined {q.source}:{q.line_no}: {q.reason}")
            held(q)

        if result is not None:
            held.carry(held_path)
            for q in fresh:
                report(q)
        else:
            result = ingest_partitioned(uri, store, ws.RAW_CONVERSATIONS, report, cache, fp)
    held.close()
    counts["conversations"] = result.as_dict()
    for kind, model in (("documents", Document), ("feedback", FeedbackEvent)):
        uri = getattr(params.ingest, kind)
        store = store_for(uri, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)
        whole = ingest(uri, model, store)
        write_jsonl(ws.RAW / f"{kind}.jsonl", whole.records)
        write_quarantine(ws.QUARANTINE / f"{kind}.jsonl", whole.quarantined, key)
        counts[kind] = whole.counts()
        for q in whole.quarantined:
            print(f"quarantined {q.source}:{q.line_no}: {q.reason}")
    write_json(ws.stage_metrics("ingest"), counts)
    print(counts)


if __name__ == "__main__":
    main()
