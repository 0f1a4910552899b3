"""Production feedback: the generation log (append-only partitions), ingestion since a watermark,
and curation into the next training set."""

from __future__ import annotations

from llmops.feedback.curate import CurateResult, curate_feedback, join_feedback
from llmops.feedback.log import FeedbackUpdate, GenerationLog, collect_new

__all__ = ["CurateResult", "FeedbackUpdate", "GenerationLog", "collect_new", "curate_feedback", "join_feedback"]
