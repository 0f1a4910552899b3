"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp server) through the official client."""

from __future__ import annotations

import time
from typing import Any

from llmops.llm.base import ChatResult


class OpenAIChatModel:
    def __init__(self, model: str, *, api_key: str | None = None, base_url: str | None = None, client: Any = None) -> None:
        if client is None:
            from openai import OpenAI

            client = OpenAI(api_key=api_key, base_url=base_url, max_retries=3)
        self._client = client
        self.model_id = model

    @classmethod
    def from_settings(cls, model: str, settings: Any) -> OpenAIChatModel:
        """``model`` on the endpoint the settings name (OPENAI_API_KEY, optional OPENAI_BASE_URL)."""
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key is not None else None
        return cls(model, api_key=key, base_url=settings.openai_base_url)

    def chat(self, messages: list[dict[str, str]], *, max_new_tokens: int = 128) -> ChatResult:
        start = time.perf_counter()
        resp = self._client.chat.completions.create(
            model=self.model_id, messages=messages, max_tokens=max_new_tokens, temperature=0
        )
        usage = resp.usage
        return ChatResult(
            text=(resp.choices[0].message.content or "").strip(),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            latency_ms=(time.perf_counter() - start) * 1000,
        )
