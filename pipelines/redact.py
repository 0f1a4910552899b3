"""Stage `redact`: pseudonymise conversations, feedback and documents, then leak-scan the result; records
with residual personal data are quarantined locally (sealed with the vault key when set).

Conversations go partition by partition and only new or changed ones are redacted
(:mod:`llmops.data.redaction`); feedback and documents are small and redacted whole, when they changed. The
detector (Presidio's registry, spaCy) loads on the first record that needs it: none on a night with nothing new."""

from __future__ import annotations

import time

from llmops import workspace as ws
from llmops.data.incremental import CACHE_DIR, PartitionedOutput, RecordCache, cache_path
from llmops.data.quarantine import write_quarantine
from llmops.data.redaction import files_key, redact_fingerprint, redact_partitioned, remember_files, reusable_files
from llmops.jsonl import read_jsonl, write_json, write_jsonl
from llmops.pii.boundary import BoundaryResult, redact_batch
from llmops.pii.redact import Redactor
from llmops.records import Document, FeedbackEvent
from pipelines._stage import setup


def main() -> None:
    params, settings = setup("redact")
    start = time.perf_counter()
    redactor = Redactor.from_settings(params.redact, settings)
    key = settings.pii_vault_key.get_secret_value() if settings.pii_vault_key else None
    qdir = ws.REDACT_QUARANTINE_CONVERSATIONS
    with RecordCache(cache_path(settings.home_dir, "redact")) as cache:
        out = PartitionedOutput(
            ws.REDACTED_CONVERSATIONS, redact_fingerprint(params.redact, redactor.id_key), companions=[qdir], digest=cache.digest
        )
        conversations, counts = redact_partitioned(
            ws.CLEAN_CONVERSATIONS, out, qdir, cache, redactor, key, params.redact.stream_batch
        )
    # Feedback and documents: redacted again only when they (or the stage, or an output) changed.
    kinds = ("feedback", "documents")
    outputs = [ws.REDACTED / f"{k}.jsonl" for k in kinds] + [ws.REDACT_QUARANTINE / f"{k}.jsonl" for k in kinds]
    memo, files = (
        settings.home_dir / CACHE_DIR / "redact-files.json",
        files_key(out.fp, [ws.CLEAN / f"{k}.jsonl" for k in kinds], key),
    )
    kept = reusable_files(memo, files, outputs)
    if kept is None:
        result = redact_batch(
            [],
            read_jsonl(ws.CLEAN / "feedback.jsonl", FeedbackEvent),
            read_jsonl(ws.CLEAN / "documents.jsonl", Document),
            redactor,
        )
        for crossing in result.crossings[1:]:
            write_jsonl(ws.REDACTED / f"{crossing.kind}.jsonl", crossing.records)
            write_quarantine(ws.REDACT_QUARANTINE / f"{crossing.kind}.jsonl", crossing.quarantined, key)
        remember_files(memo, files, outputs, result.crossings[1:])
    else:
        result = BoundaryResult(conversations, kept[0], kept[1], params.redact.max_leak_share)
    result.conversations = conversations
    stats = {
        **redactor.report(),
        "conversations": counts.as_dict(),
        "leak_gate": result.report(),
        "seconds": round(time.perf_counter() - start, 2),
    }
    write_json(ws.stage_metrics("redact"), stats)
    print(stats)
    result.check()  # above redact.max_leak_share: the stage fails (DVC records nothing)


if __name__ == "__main__":
    main()
