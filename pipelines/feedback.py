"""Stage `feedback`: new generation-log lines since the watermark + ingested feedback -> redacted,
joined, curated SFT events and DPO pairs (consumed by `trainset`)."""

from __future__ import annotations

from llmops import workspace as ws
from llmops.data.quarantine import write_quarantine
from llmops.feedback.ingest import ingest_feedback
from llmops.feedback.screen import OpenAIModeration
from llmops.jsonl import read_jsonl, write_json, write_jsonl
from llmops.pii.redact import Redactor
from llmops.records import Document, EvalQuestion, FeedbackEvent
from pipelines._stage import setup


def main() -> None:
    params, settings = setup("feedback")
    docs = read_jsonl(ws.REDACTED / "documents.jsonl", Document)
    run = ingest_feedback(
        read_jsonl(ws.REDACTED / "feedback.jsonl", FeedbackEvent),
        settings.path("generation-log"),
        settings.path("feedback"),
        read_jsonl(params.evaluate.questions, EvalQuestion),
        {d.doc_id: d.text for d in docs},
        params.feedback,
        Redactor.from_settings(params.redact, settings),
        # No early per-key cap against the conversations: the trainset stage holds every share on the files
        # it writes, so an append to the conversations does not rerun this stage.
        moderation=OpenAIModeration.from_settings(settings) if params.feedback.moderation else None,
    )
    write_jsonl(ws.FEEDBACK / "events.jsonl", run.joined)
    write_jsonl(ws.FEEDBACK / "curated.jsonl", run.curated.sft)
    write_jsonl(ws.FEEDBACK / "dpo.jsonl", run.curated.dpo)
    # Log lines that failed their contract are raw served text (before redaction): kept locally, never pushed.
    key = settings.pii_vault_key.get_secret_value() if settings.pii_vault_key else None
    write_quarantine(ws.FEEDBACK_QUARANTINE / "generation-log.jsonl", run.new.quarantined, key)
    write_json(ws.stage_metrics("feedback"), run.stats())
    run.commit()
    print(run.stats())


if __name__ == "__main__":
    main()
