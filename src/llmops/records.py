"""Typed records that cross boundaries (see ARCHITECTURE.md, "Data contracts").

Every JSONL line the pipeline reads or writes is validated into one of these models; nothing passes
between stages as an untyped dict.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Turn(_Record):
    role: Literal["customer", "agent"]
    text: str
    ts: datetime | None = None


class Conversation(_Record):
    conversation_id: str = Field(min_length=1)
    channel: str = Field(min_length=1)
    created_at: datetime
    turns: list[Turn] = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Document(_Record):
    doc_id: str = Field(min_length=1)
    text: str = Field(min_length=1)
    title: str | None = None
    url: str | None = None
    updated_at: datetime | None = None


class EvalQuestion(_Record):
    id: str = Field(min_length=1)
    query: str = Field(min_length=1)
    gold_doc_ids: list[str] = Field(min_length=1)
    answer: str | None = None


class FeedbackEvent(_Record):
    """One generation-log line; ``rating``/``correction`` arrive later from users."""

    generation_id: str = Field(min_length=1)
    ts: datetime
    query: str
    answer: str
    retrieved_doc_ids: list[str] = Field(default_factory=list)
    model_id: str
    index_version: str
    data_rev: str
    latency_ms: float = Field(ge=0)
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    rating: Literal[-1, 0, 1] | None = None
    correction: str | None = None
    simulated: bool = False
    # Lineage (names only, never secrets): the API key that asked, and the key + role whose rating or
    # correction was applied. All None for feedback imported from files by the operator.
    key_name: str | None = None
    feedback_key_name: str | None = None
    feedback_role: Literal["user", "reviewer"] | None = None


class Chunk(_Record):
    chunk_id: str
    doc_id: str
    doc_hash: str
    position: int
    text: str
    title: str | None = None


class Quarantined(_Record):
    """A record held back with the reason, whole, so nothing is lost silently (see ``llmops.data.quarantine``).

    ``raw_encoding``: ``base64`` for bytes that are not UTF-8 text. ``sealed``: ``raw`` is a Fernet token of
    it (the vault key), not the record itself.
    """

    source: str
    line_no: int
    reason: str
    raw: str
    raw_encoding: Literal["text", "base64"] = "text"
    sealed: bool = False


class ChatMessage(_Record):
    role: Literal["system", "user", "assistant"]
    content: str


class TrainingExample(_Record):
    """Chat-format fine-tuning example (OpenAI-compatible ``{"messages": [...]}``) plus provenance."""

    messages: list[ChatMessage]
    source: str
    group_id: str
    created_at: datetime | None = None  # when the underlying conversation/feedback arrived (retrain trigger)

    def to_openai(self) -> dict[str, Any]:
        return {"messages": [m.model_dump() for m in self.messages]}
