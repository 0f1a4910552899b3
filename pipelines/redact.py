"""Stage `redact`: pseudonymise conversations, feedback and documents, then leak-scan the result; records
with residual personal data are quarantined locally (sealed with the vault key when set)."""

from __future__ import annotations

import time

from llmops import workspace as ws
from llmops.data.quarantine import write_quarantine
from llmops.jsonl import read_jsonl, write_json, write_jsonl
from llmops.pii import Redactor
from llmops.pii.boundary import redact_batch
from llmops.records import Conversation, Document, FeedbackEvent
from pipelines._stage import setup


def main() -> None:
    params, settings = setup("redact")
    start = time.perf_counter()
    redactor = Redactor.from_settings(params.redact, settings)
    result = redact_batch(
        read_jsonl(ws.CLEAN / "conversations.jsonl", Conversation),
        read_jsonl(ws.CLEAN / "feedback.jsonl", FeedbackEvent),
        read_jsonl(ws.CLEAN / "documents.jsonl", Document),
        redactor,
        progress=True,
    )
    key = settings.pii_vault_key.get_secret_value() if settings.pii_vault_key else None
    for crossing in result.crossings:
        write_jsonl(ws.REDACTED / f"{crossing.kind}.jsonl", crossing.records)
        write_quarantine(ws.REDACT_QUARANTINE / f"{crossing.kind}.jsonl", crossing.quarantined, key)
    stats = {**redactor.report(), "leak_gate": result.report(), "seconds": round(time.perf_counter() - start, 2)}
    write_json(ws.stage_metrics("redact"), stats)
    print(stats)
    result.check()  # above redact.max_leak_share: the stage fails (DVC records nothing)


if __name__ == "__main__":
    main()
