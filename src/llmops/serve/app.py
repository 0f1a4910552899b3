"""FastAPI app: ``POST /answer``, ``POST /feedback``, ``GET /healthz``, ``GET /metrics`` (Prometheus).

Hostile input gets a 4xx, never a 5xx: the :class:`~llmops.serve.guard.Guard` middleware handles keys,
rate limits and body size; strings with lone surrogates or NUL are 422; validation errors never echo
the input back (only where it was and what was wrong), and every label of every metric is bounded.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmops.serve.answerer import Answerer, QueueFull, UnknownGeneration
from llmops.serve.auth import ANONYMOUS, ApiKey, KeyRing
from llmops.serve.components import IndexRetriever, build_answerer, serving_model
from llmops.serve.guard import SCOPE_KEY, Guard, GuardConfig, RateLimiter

__all__ = ["IndexRetriever", "build_answerer", "create_app", "serving_model"]

SIMULATED_HEADER = "x-llmops-simulated"


def _clean_text(value: str | None) -> str | None:
    if value is None:
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text is not valid Unicode (lone surrogate); send UTF-8 text") from None
    if "\x00" in value:
        raise ValueError("text contains a NUL character")
    return value


class AnswerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=4000)

    _valid = field_validator("query")(_clean_text)


class AnswerResponse(BaseModel):
    generation_id: str
    answer: str
    retrieved_doc_ids: list[str]
    model_id: str
    index_version: str


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    generation_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    rating: Literal[-1, 0, 1] | None = None
    correction: str | None = Field(default=None, max_length=8000)

    _valid = field_validator("correction")(_clean_text)


def _safe(value: object, limit: int) -> str:
    """A short, encodable rendering of something the client sent (never the whole of it)."""
    text = str(value)
    text = text if len(text) <= limit else text[:limit] + "…"
    return text.encode("utf-8", "replace").decode("utf-8")


def _caller(request: Request) -> ApiKey:
    return request.scope[SCOPE_KEY]


def create_app(answerer: Answerer, *, keys: KeyRing | None = None) -> FastAPI:
    """The service over ``answerer``; with ``keys`` /answer and /feedback (and /metrics when
    ``serve.protect_metrics``) need a bearer key, without them every caller is ``anonymous``."""
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    cfg = answerer.cfg
    registry = CollectorRegistry()
    requests = Counter("llmops_requests_total", "HTTP requests by route template", ["endpoint", "status"], registry=registry)
    rejected = Counter("llmops_rejected_total", "requests refused before reaching the model", ["reason"], registry=registry)
    cache_hits = Counter("llmops_answer_cache_hits_total", "answers served from the cache", registry=registry)
    latency = Histogram(
        "llmops_answer_latency_seconds",
        "time to answer",
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    )

    class _Generations:
        def collect(self) -> Any:
            yield CounterMetricFamily("llmops_generations", "model generations", value=answerer.stats["generations"])
            yield CounterMetricFamily(
                "llmops_answer_shared", "answers that shared an identical in-flight generation", value=answerer.stats["shared"]
            )
            yield GaugeMetricFamily("llmops_generation_queue", "generations running or waiting", value=answerer.pending)

    registry.register(_Generations())
    bearer = HTTPBearer(auto_error=False, description="an API key from LLMOPS_API_KEYS / LLMOPS_API_KEYS_FILE")
    secured = [Security(bearer)] if keys is not None else []

    app = FastAPI(title="llmops answer service", version="0.2.0")
    protected = {"/answer", "/feedback"} | ({"/metrics"} if cfg.protect_metrics else set())
    app.add_middleware(
        Guard,
        routes=lambda: app.router.routes,
        cfg=GuardConfig(
            keys=keys,
            anonymous=ApiKey(ANONYMOUS, cfg.anonymous_role),
            protected=protected,
            limited={"/answer", "/feedback"},
            limiter=RateLimiter(cfg.rate_limit_per_minute),
            max_body_bytes=cfg.max_body_bytes,
            max_json_depth=cfg.max_json_depth,
            count=lambda endpoint, status: requests.labels(endpoint, str(status)).inc(),
            reject=lambda reason: rejected.labels(reason).inc(),
        ),
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        rejected.labels("invalid").inc()
        errors = [
            {"loc": [_safe(p, 64) for p in e.get("loc", ())], "msg": _safe(e.get("msg", ""), 200), "type": _safe(e["type"], 64)}
            for e in exc.errors()[:10]
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.post("/answer", response_model=AnswerResponse, dependencies=secured)
    def answer(req: AnswerRequest, request: Request) -> AnswerResponse:
        start = time.perf_counter()
        simulated = request.headers.get(SIMULATED_HEADER) == "1"
        try:
            res = answerer.answer(req.query, caller=_caller(request), simulated=simulated)
        except QueueFull as exc:
            rejected.labels("queue_full").inc()
            raise HTTPException(503, "the model is busy; retry later", headers={"Retry-After": str(exc.retry_after)}) from None
        latency.observe(time.perf_counter() - start)
        if res.cached:
            cache_hits.inc()
        return AnswerResponse(
            generation_id=res.generation_id,
            answer=res.answer,
            retrieved_doc_ids=res.retrieved_doc_ids,
            model_id=res.model_id,
            index_version=res.index_version,
        )

    @app.post("/feedback", status_code=202, dependencies=secured)
    def feedback(req: FeedbackRequest, request: Request) -> dict[str, str]:
        if req.rating is None and not req.correction:
            raise HTTPException(422, "give a rating (-1, 0, 1) and/or a correction")
        try:
            answerer.feedback(
                req.generation_id,
                req.rating,
                req.correction,
                caller=_caller(request),
                simulated=request.headers.get(SIMULATED_HEADER) == "1",
            )
        except UnknownGeneration:
            raise HTTPException(404, f"unknown generation_id {req.generation_id!r}") from None
        return {"status": "recorded"}

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "model_id": answerer.model.model_id, "index_version": answerer.index_version}

    @app.get("/metrics", response_class=PlainTextResponse, dependencies=secured if cfg.protect_metrics else [])
    def metrics() -> str:
        return generate_latest(registry).decode()

    return app
