"""What the service does per request, without HTTP: retrieve, answer, cache, redact, log.

The cache key is (normalised query, index version, model id): refreshing the index or promoting a
model changes the key, so stale answers are never served.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from llmops.config import BaseParams, ServeParams
from llmops.feedback.log import FeedbackUpdate, GenerationLog
from llmops.llm.base import ChatModel
from llmops.llm.prompts import rag_messages
from llmops.records import FeedbackEvent


class Retriever(Protocol):
    def retrieve(self, query: str, k: int) -> list[dict[str, Any]]: ...


@dataclass
class Answer:
    generation_id: str
    answer: str
    retrieved_doc_ids: list[str]
    model_id: str
    index_version: str
    cached: bool
    latency_ms: float


class UnknownGeneration(KeyError):
    pass


def normalise_query(query: str) -> str:
    return " ".join(query.split()).casefold()


class Answerer:
    def __init__(
        self,
        retriever: Retriever,
        model: ChatModel,
        log: GenerationLog,
        redact: Callable[[list[str]], list[str]],
        cfg: ServeParams,
        base: BaseParams,
        *,
        index_version: str,
        data_rev: str,
        known_ids: set[str] | None = None,
    ) -> None:
        self.retriever, self.model, self.log, self.redact = retriever, model, log, redact
        self.cfg, self.base = cfg, base
        self.index_version, self.data_rev = index_version, data_rev
        # (answer, redacted answer, doc ids, prompt tokens, completion tokens) by (query, index, model)
        self._cache: OrderedDict[tuple[str, str, str], tuple[str, str, list[str], int, int]] = OrderedDict()
        # Redaction is deterministic: the same query text is pseudonymised once (NER is the costly part).
        self._redact_query = functools.lru_cache(maxsize=cfg.cache_size)(lambda q: redact([q])[0])
        self._cache_lock = threading.Lock()
        self._model_lock = threading.Lock()  # generation is not re-entrant on one model instance
        self._known = known_ids if known_ids is not None else set()
        self.stats = {"requests": 0, "cache_hits": 0}

    def _cache_get(self, key: tuple[str, str, str]) -> tuple[str, str, list[str], int, int] | None:
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
            return hit

    def _cache_put(self, key: tuple[str, str, str], value: tuple[str, str, list[str], int, int]) -> None:
        with self._cache_lock:
            self._cache[key] = value
            while len(self._cache) > self.cfg.cache_size:
                self._cache.popitem(last=False)

    def answer(self, query: str, *, simulated: bool = False) -> Answer:
        start = time.perf_counter()
        key = (normalise_query(query), self.index_version, self.model.model_id)
        hit = self._cache_get(key)
        if hit is None:
            hits = self.retriever.retrieve(query, self.cfg.top_k)
            messages = rag_messages(query, [h["text"] for h in hits], self.base.system_prompt, self.cfg.context_chars)
            with self._model_lock:
                res = self.model.chat(messages, max_new_tokens=self.cfg.max_new_tokens)
            doc_ids = list(dict.fromkeys(h["doc_id"] for h in hits))
            hit = (res.text, self.redact([res.text])[0], doc_ids, res.prompt_tokens, res.completion_tokens)
            self._cache_put(key, hit)
            cached = False
        else:
            cached = True
        text, red_answer, doc_ids, prompt_tokens, completion_tokens = hit
        latency = (time.perf_counter() - start) * 1000
        gid = uuid.uuid4().hex
        red_query = self._redact_query(query)
        self.log.append_generation(
            FeedbackEvent(
                generation_id=gid,
                ts=datetime.now(UTC),
                query=red_query,
                answer=red_answer,
                retrieved_doc_ids=doc_ids,
                model_id=self.model.model_id,
                index_version=self.index_version,
                data_rev=self.data_rev,
                latency_ms=round(latency, 2),
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                simulated=simulated,
            )
        )
        self._known.add(gid)
        self.stats["requests"] += 1
        self.stats["cache_hits"] += int(cached)
        return Answer(gid, text, doc_ids, self.model.model_id, self.index_version, cached, latency)

    def feedback(self, generation_id: str, rating: int | None, correction: str | None, *, simulated: bool = False) -> None:
        if generation_id not in self._known:
            raise UnknownGeneration(generation_id)
        red = self.redact([correction])[0] if correction else None
        self.log.append_feedback(
            FeedbackUpdate(generation_id=generation_id, ts=datetime.now(UTC), rating=rating, correction=red, simulated=simulated)
        )
