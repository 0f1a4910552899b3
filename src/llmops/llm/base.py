"""The ChatModel protocol every chat backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass
class ChatResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    truncated: bool = False  # cut at max_new_tokens (the reply did not end by itself)


class ChatModel(Protocol):
    """Generates an assistant reply for a list of ``{"role", "content"}`` messages."""

    model_id: str

    def chat(self, messages: list[dict[str, str]], *, max_new_tokens: int = 128) -> ChatResult: ...


def chat_many(
    model: ChatModel, conversations: Sequence[list[dict[str, str]]], *, max_new_tokens: int, batch_size: int = 16
) -> list[ChatResult]:
    """Replies to many conversations: batched when the model can (``chat_batch``), else one by one."""
    batch = getattr(model, "chat_batch", None)
    if callable(batch):
        return list(batch(conversations, max_new_tokens=max_new_tokens, batch_size=batch_size))
    return [model.chat(m, max_new_tokens=max_new_tokens) for m in conversations]
