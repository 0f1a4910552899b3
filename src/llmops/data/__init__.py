"""Ingestion, contract validation, cleaning, de-duplication and quarantine."""

from __future__ import annotations

from llmops.data.clean import clean_conversations, clean_documents, clean_feedback
from llmops.data.ingest import IngestResult, ingest, parse_jsonl

__all__ = ["IngestResult", "clean_conversations", "clean_documents", "clean_feedback", "ingest", "parse_jsonl"]
