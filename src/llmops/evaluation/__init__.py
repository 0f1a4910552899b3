"""Evaluators: retrieval quality and answer quality, combined into ``metrics.json``."""

from __future__ import annotations

from llmops.evaluation.answers import token_f1
from llmops.evaluation.retrieval import retrieval_metrics

__all__ = ["retrieval_metrics", "token_f1"]
