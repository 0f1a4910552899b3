"""Stage `ingest`: read raw sources (local or s3://), validate contracts, quarantine bad records (whole,
local only, sealed with the vault key when one is set)."""

from __future__ import annotations

from llmops import workspace as ws
from llmops.data import ingest
from llmops.data.quarantine import write_quarantine
from llmops.jsonl import write_json, write_jsonl
from llmops.records import Conversation, Document, FeedbackEvent
from llmops.storage import store_for
from pipelines._stage import setup


def main() -> None:
    params, settings = setup("ingest")
    key = settings.pii_vault_key.get_secret_value() if settings.pii_vault_key else None  # seals the quarantine
    counts = {}
    for kind, model in (("conversations", Conversation), ("documents", Document), ("feedback", FeedbackEvent)):
        uri = getattr(params.ingest, kind)
        store = store_for(uri, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)
        result = ingest(uri, model, store)
        write_jsonl(ws.RAW / f"{kind}.jsonl", result.records)
        write_quarantine(ws.QUARANTINE / f"{kind}.jsonl", result.quarantined, key)
        counts[kind] = result.counts()
        for q in result.quarantined:
            print(f"quarantined {q.source}:{q.line_no}: {q.reason}")
    write_json(ws.stage_metrics("ingest"), counts)
    print(counts)


if __name__ == "__main__":
    main()
