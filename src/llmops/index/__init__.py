"""Chunking, embedders, the Chroma store and incremental refresh of the knowledge-base index."""

from __future__ import annotations

from llmops.index.chunk import chunk_documents
from llmops.index.refresh import RefreshResult, refresh_index

__all__ = ["RefreshResult", "chunk_documents", "refresh_index"]
