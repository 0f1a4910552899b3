"""The ChatModel protocol every chat backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass
class ChatResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float


class ChatModel(Protocol):
    """Generates an assistant reply for a list of ``{"role", "content"}`` messages."""

    model_id: str

    def chat(self, messages: list[dict[str, str]], *, max_new_tokens: int = 128) -> ChatResult: ...
