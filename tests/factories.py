"""Small builders of records for tests (one place, so a contract change is fixed once)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from llmops.records import FeedbackEvent

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def feedback_event(
    gid: str,
    query: str,
    answer: str,
    rating: int | None = None,
    correction: str | None = None,
    docs: list[str] | None = None,
    minutes: int = 0,
) -> FeedbackEvent:
    """A generation-log event with neutral lineage fields."""
    return FeedbackEvent(
        generation_id=gid,
        ts=T0 + timedelta(minutes=minutes),
        query=query,
        answer=answer,
        retrieved_doc_ids=docs or [],
        model_id="m",
        index_version="i",
        data_rev="r",
        latency_ms=1,
        prompt_tokens=1,
        completion_tokens=1,
        rating=rating,
        correction=correction,
    )
