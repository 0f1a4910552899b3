"""One chat interface over the local model (SmolLM2 via transformers) and OpenAI-compatible endpoints."""

from __future__ import annotations

from llmops.llm.base import ChatModel, ChatResult

__all__ = ["ChatModel", "ChatResult"]
