"""FastAPI app: ``POST /answer``, ``POST /feedback``, ``GET /healthz``, ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from llmops.config import Params, Settings
from llmops.errors import ConfigError
from llmops.serve.answerer import Answerer, UnknownGeneration


class AnswerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=4000)


class AnswerResponse(BaseModel):
    generation_id: str
    answer: str
    retrieved_doc_ids: list[str]
    model_id: str
    index_version: str


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    generation_id: str = Field(min_length=1, max_length=64)
    rating: Literal[-1, 0, 1] | None = None
    correction: str | None = Field(default=None, max_length=8000)


class IndexRetriever:
    """The configured retriever (hybrid by default) over the version the index alias serves now."""

    def __init__(self, settings: Settings, params: Params) -> None:
        from llmops.index.embed import make_embedder
        from llmops.index.hybrid import open_retriever
        from llmops.index.store import chroma_client
        from llmops.index.versions import read_alias

        client = chroma_client(settings)
        embedder = make_embedder(params.index.embedder, params.index, settings)
        self._retriever = open_retriever(client, embedder, params.index)
        self.version = read_alias(client, params.index.collection).serving or "unpublished"

    def retrieve(self, query: str, k: int) -> list[dict[str, Any]]:
        return self._retriever.search([query], k=k)[0]


def serving_model(settings: Settings) -> Any:
    """``OPENAI_CHAT_MODEL`` when keyed; else the registry's champion as it was trained (an OpenAI
    fine-tuned model through the API, or the base model + its LoRA adapter, fetched from an S3 registry
    when needed); the base model until a champion exists."""
    from llmops.finetune.registry import Registry
    from llmops.llm.trained import trained_chat_model
    from llmops.storage import is_remote

    if settings.openai_api_key and settings.openai_chat_model:
        from llmops.llm.openai_chat import OpenAIChatModel

        return OpenAIChatModel.from_settings(settings.openai_chat_model, settings)
    registry = Registry.from_settings(settings)  # LLMOPS_REGISTRY_URI: local or s3://
    champion = registry.champion()
    if champion is None:
        return trained_chat_model("local", None, None, settings)
    if champion.backend == "openai":
        return trained_chat_model("openai", champion.model_id, None, settings)
    if not champion.artifact_path:
        raise ConfigError(f"champion {champion.model_id} has no artifact in the registry: promote another model")
    adapter = Path(champion.artifact_path)
    if is_remote(champion.artifact_path):  # an S3 registry: serve from a local copy of the adapter
        adapter = registry.fetch_artifact(champion.model_id, settings.path("serve", "models", champion.model_id))
    return trained_chat_model("local", champion.model_id, adapter, settings)


def build_answerer(settings: Settings, params: Params, project_dir: Path) -> Answerer:
    """The real components: Chroma + MiniLM retriever, champion model (or OpenAI when configured),
    Presidio redaction, the generation log under ``<LLMOPS_HOME>/generation-log``."""
    from llmops.feedback.log import GenerationLog
    from llmops.pii import Redactor
    from llmops.versioning import data_revision

    model = serving_model(settings)
    retriever = IndexRetriever(settings, params)
    redactor = Redactor.from_settings(params.redact, settings)
    log_root = settings.path("generation-log")
    return Answerer(
        retriever,
        model,
        GenerationLog(log_root, fsync=params.serve.fsync),
        redactor.redact_texts,
        params.serve,
        params.base,
        index_version=retriever.version,
        data_rev=data_revision(project_dir),
        known_ids=known_generation_ids(log_root),
    )


def known_generation_ids(log_root: Path) -> set[str]:
    """Ids already in the log, so feedback for answers given before a restart is accepted."""
    ids: set[str] = set()
    for part in log_root.glob("generations/date=*/part-*.jsonl"):
        with part.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    ids.add(json.loads(line)["generation_id"])
                except (ValueError, KeyError, TypeError):
                    continue  # a bad line is the nightly ingestion's to quarantine
    return ids


def create_app(answerer: Answerer, *, max_body_bytes: int = 65536) -> FastAPI:
    # FastAPI resolves endpoint annotations from module globals: its types are imported at the top.
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    registry = CollectorRegistry()
    requests = Counter("llmops_requests_total", "HTTP requests", ["endpoint", "status"], registry=registry)
    cache_hits = Counter("llmops_answer_cache_hits_total", "answers served from the cache", registry=registry)
    latency = Histogram(
        "llmops_answer_latency_seconds",
        "time to answer",
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    )

    app = FastAPI(title="llmops answer service", version="0.1.0")

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            requests.labels(request.url.path, "413").inc()
            return JSONResponse({"detail": f"request body over {max_body_bytes} bytes"}, status_code=413)
        response = await call_next(request)
        requests.labels(request.url.path, str(response.status_code)).inc()
        return response

    @app.post("/answer", response_model=AnswerResponse)
    def answer(req: AnswerRequest, request: Request) -> AnswerResponse:
        start = time.perf_counter()
        simulated = request.headers.get("x-llmops-simulated") == "1"
        res = answerer.answer(req.query, simulated=simulated)
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

    @app.post("/feedback", status_code=202)
    def feedback(req: FeedbackRequest, request: Request) -> dict[str, str]:
        if req.rating is None and not req.correction:
            raise HTTPException(422, "give a rating (-1, 0, 1) and/or a correction")
        try:
            answerer.feedback(
                req.generation_id, req.rating, req.correction, simulated=request.headers.get("x-llmops-simulated") == "1"
            )
        except UnknownGeneration:
            raise HTTPException(404, f"unknown generation_id {req.generation_id!r}") from None
        return {"status": "recorded"}

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "model_id": answerer.model.model_id, "index_version": answerer.index_version}

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> str:
        return generate_latest(registry).decode()

    return app
