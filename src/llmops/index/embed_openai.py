"""OpenAI embeddings (or any OpenAI-compatible ``/v1/embeddings`` endpoint) with retries and a rate limit."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from llmops.errors import ModelNotAvailableError

_KNOWN_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


class OpenAIEmbedder:
    """Batched requests; transient failures (429, 5xx, timeouts, connection errors) are retried with
    exponential backoff; requests are spaced to stay under ``requests_per_minute``."""

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        batch_size: int = 256,
        requests_per_minute: int = 3000,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if client is None:
            from openai import OpenAI

            # Retries are ours (counted and rate-limited together), not the SDK's.
            client = OpenAI(api_key=api_key or "not-needed", base_url=base_url, max_retries=0, timeout=60.0)
        self._client, self._model = client, model
        self._batch_size, self._interval = batch_size, 60.0 / requests_per_minute
        self._max_retries, self._backoff, self._sleep = max_retries, backoff_s, sleep
        self._last_request = 0.0
        self._dim: int | None = _KNOWN_DIMS.get(model)
        self.requests = 0
        self.retries = 0

    @property
    def embedder_id(self) -> str:
        if self._dim is None:  # an unknown model on a compatible server: ask it once
            self._dim = len(self._request(["dimension probe"])[0])
        return f"openai:{self._model}:{self._dim}"

    def _request(self, texts: list[str]) -> list[list[float]]:
        import openai

        transient = (openai.RateLimitError, openai.APIConnectionError, openai.APITimeoutError, openai.InternalServerError)
        for attempt in range(self._max_retries + 1):
            wait = self._last_request + self._interval - time.monotonic()
            if wait > 0:
                self._sleep(wait)
            self._last_request = time.monotonic()
            self.requests += 1
            try:
                res = self._client.embeddings.create(model=self._model, input=texts)
            except transient as exc:
                if attempt == self._max_retries:
                    raise ModelNotAvailableError(
                        f"embedding endpoint failed {attempt + 1} times ({type(exc).__name__}: {exc}); "
                        "check OPENAI_BASE_URL / the server, or raise index.embedding_retries"
                    ) from exc
                self.retries += 1
                self._sleep(self._backoff * 2**attempt)
                continue
            except openai.APIStatusError as exc:  # 4xx other than 429: retrying will not help
                raise ModelNotAvailableError(
                    f"embedding request rejected ({exc.status_code}): {exc.message}; check the model name and API key"
                ) from exc
            return [d.embedding for d in sorted(res.data, key=lambda d: d.index)]
        raise AssertionError("unreachable")

    def embed(self, texts: list[str], *, progress: bool = False) -> list[list[float]]:
        out: list[list[float]] = []
        batches: Iterable[int] = range(0, len(texts), self._batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="embed", unit="batch")
        for i in batches:
            vectors = self._request(texts[i : i + self._batch_size])
            if self._dim is None:
                self._dim = len(vectors[0])
            out.extend(vectors)
        return out
