"""What the service does per request, without HTTP: retrieve, answer, cache, redact, log.

The cache key is (normalised query, index version, model id): refreshing the index or promoting a
model changes the key, so stale answers are never served.

Under load: generations wait for the one model in a bounded queue (``serve.max_queue``; beyond it
:class:`QueueFull`, the service's 503), and concurrent identical questions share one generation
(single-flight, ``serve.single_flight``): the first asker generates, the others wait for its result.

Feedback is accepted for generations of the last ``serve.feedback_window_days`` days, at most
``serve.max_known_generations`` of them (:class:`KnownGenerations`): memory stays bounded however long the
service runs and however many answers a client asks for.
"""

from __future__ import annotations

import functools
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from llmops.config import BaseParams, ServeParams
from llmops.feedback.log import FeedbackUpdate, GenerationLog
from llmops.index.hybrid import RetrievalHit
from llmops.llm.base import ChatModel
from llmops.llm.prompts import rag_messages
from llmops.records import FeedbackEvent
from llmops.serve.auth import ApiKey

# (answer, redacted answer, doc ids, prompt tokens, completion tokens)
Generated = tuple[str, str, list[str], int, int]


class Retriever(Protocol):
    def retrieve(self, query: str, k: int) -> list[RetrievalHit]: ...


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


class QueueFull(RuntimeError):
    """Too many generations waiting for the model; retry after ``retry_after`` seconds."""

    def __init__(self, pending: int, retry_after: int) -> None:
        super().__init__(f"{pending} generations already waiting for the model")
        self.retry_after = retry_after


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    result: Generated | None = None
    error: BaseException | None = None


class KnownGenerations:
    """Generation id -> the key that asked, for the last ``window_s`` seconds and at most ``max_size`` ids
    (the oldest go first). Thread-safe."""

    def __init__(self, max_size: int, window_s: float, clock: Callable[[], float] = time.time) -> None:
        self.max_size, self.window_s, self._clock = max_size, window_s, clock
        self._ids: OrderedDict[str, tuple[float, str | None]] = OrderedDict()  # in the order they were given
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._ids)

    def _expire(self, now: float) -> None:
        while self._ids and (len(self._ids) > self.max_size or next(iter(self._ids.values()))[0] < now - self.window_s):
            self._ids.popitem(last=False)

    def add(self, generation_id: str, key_name: str | None, at: float | None = None) -> None:
        """Remember an id given at ``at`` (now by default; ids must come in time order)."""
        with self._lock:
            self._ids[generation_id] = (self._clock() if at is None else at, key_name)
            self._ids.move_to_end(generation_id)
            self._expire(self._clock())

    def asker(self, generation_id: str) -> tuple[bool, str | None]:
        """(known, the key name that asked); an id past the window or evicted is unknown."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            found = self._ids.get(generation_id)
            return (False, None) if found is None else (True, found[1])


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
        known_ids: Iterable[tuple[str, str | None, float]] = (),
    ) -> None:
        """``known_ids``: (generation id, key name, unix time) of earlier answers, oldest first (see
        :func:`llmops.serve.components.known_generation_ids`)."""
        self.retriever, self.model, self.log, self.redact = retriever, model, log, redact
        self.cfg, self.base = cfg, base
        self.index_version, self.data_rev = index_version, data_rev
        self._cache: OrderedDict[tuple[str, str, str], Generated] = OrderedDict()
        # Redaction is deterministic: the same query text is pseudonymised once (NER is the costly part).
        self._redact_query = functools.lru_cache(maxsize=cfg.cache_size)(lambda q: redact([q])[0])
        self._cache_lock = threading.Lock()
        self._model_lock = threading.Lock()  # generation is not re-entrant on one model instance
        self._flight_lock = threading.Lock()
        self._inflight: dict[tuple[str, str, str], _Flight] = {}
        self._pending = 0  # generations running or waiting for the model
        self._gen_seconds = 1.0  # moving average of one generation, for Retry-After
        # generation id -> name of the key that asked (feedback is accepted from that key or a reviewer)
        self.known = KnownGenerations(cfg.max_known_generations, cfg.feedback_window_days * 86400.0)
        for gid, key_name, at in known_ids:
            self.known.add(gid, key_name, at)
        self._stats_lock = threading.Lock()
        self.stats = {"requests": 0, "cache_hits": 0, "generations": 0, "shared": 0}

    @property
    def pending(self) -> int:
        """Generations running or waiting for the model."""
        return self._pending

    def _cache_get(self, key: tuple[str, str, str]) -> Generated | None:
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
            return hit

    def _cache_put(self, key: tuple[str, str, str], value: Generated) -> None:
        with self._cache_lock:
            self._cache[key] = value
            while len(self._cache) > self.cfg.cache_size:
                self._cache.popitem(last=False)

    def _generate(self, query: str) -> Generated:
        hits = self.retriever.retrieve(query, self.cfg.top_k)
        messages = rag_messages(query, [h["text"] for h in hits], self.base.system_prompt, self.cfg.context_chars)
        with self._model_lock:
            start = time.perf_counter()
            res = self.model.chat(messages, max_new_tokens=self.cfg.max_new_tokens)
            self._gen_seconds = 0.8 * self._gen_seconds + 0.2 * (time.perf_counter() - start)
            self.stats["generations"] += 1
        doc_ids = list(dict.fromkeys(h["doc_id"] for h in hits))
        return res.text, self.redact([res.text])[0], doc_ids, res.prompt_tokens, res.completion_tokens

    def _generate_once(self, key: tuple[str, str, str], query: str) -> tuple[Generated, bool]:
        """Generate, or wait for the identical generation already in flight; returns (result, shared)."""
        with self._flight_lock:
            flight = self._inflight.get(key)
            leader = flight is None
            if leader:
                hit = self._cache_get(key)  # a leader may have finished since the caller looked
                if hit is not None:
                    return hit, True
                if self._pending >= self.cfg.max_queue:
                    raise QueueFull(self._pending, max(1, math.ceil(self._gen_seconds * self._pending)))
                self._pending += 1
                flight = _Flight()
                if self.cfg.single_flight:
                    self._inflight[key] = flight
        assert flight is not None
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.result is not None
            return flight.result, True
        try:
            flight.result = self._generate(query)
            self._cache_put(key, flight.result)
            return flight.result, False
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._flight_lock:
                self._pending -= 1
                if self._inflight.get(key) is flight:
                    del self._inflight[key]
            flight.done.set()

    def answer(self, query: str, *, caller: ApiKey | None = None, simulated: bool = False) -> Answer:
        """Answer ``query`` (cached / shared when possible) and log it under the caller's key name."""
        start = time.perf_counter()
        key = (normalise_query(query), self.index_version, self.model.model_id)
        hit = self._cache_get(key)
        cached, shared = hit is not None, False
        if hit is None:
            hit, shared = self._generate_once(key, query)
            cached = shared
        text, red_answer, doc_ids, prompt_tokens, completion_tokens = hit
        latency = (time.perf_counter() - start) * 1000
        gid = uuid.uuid4().hex
        key_name = caller.name if caller else None
        self.log.append_generation(
            FeedbackEvent(
                generation_id=gid,
                ts=datetime.now(UTC),
                query=self._redact_query(query),
                answer=red_answer,
                retrieved_doc_ids=doc_ids,
                model_id=self.model.model_id,
                index_version=self.index_version,
                data_rev=self.data_rev,
                latency_ms=round(latency, 2),
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                simulated=simulated,
                key_name=key_name,
            )
        )
        self.known.add(gid, key_name)
        with self._stats_lock:
            self.stats["requests"] += 1
            self.stats["cache_hits"] += int(cached)
            self.stats["shared"] += int(shared)
        return Answer(gid, text, doc_ids, self.model.model_id, self.index_version, cached, latency)

    def feedback(
        self,
        generation_id: str,
        rating: Literal[-1, 0, 1] | None,
        correction: str | None,
        *,
        caller: ApiKey | None = None,
        simulated: bool = False,
    ) -> None:
        """Record a rating/correction. Only the key that asked, or a reviewer, may give feedback on a
        generation; to anyone else it does not exist (:class:`UnknownGeneration`)."""
        known, asker = self.known.asker(generation_id)
        if not known:
            raise UnknownGeneration(generation_id)
        if caller is not None and caller.role != "reviewer" and asker is not None and caller.name != asker:
            raise UnknownGeneration(generation_id)
        red = self.redact([correction])[0] if correction else None
        self.log.append_feedback(
            FeedbackUpdate(
                generation_id=generation_id,
                ts=datetime.now(UTC),
                rating=rating,
                correction=red,
                simulated=simulated,
                key_name=caller.name if caller else None,
                role=caller.role if caller else None,
            )
        )
