"""The answer service's real components: the serving retriever, the champion model, the Answerer."""

from __future__ import annotations

import json
from collections import deque
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops.config import Params, Settings
from llmops.errors import ConfigError
from llmops.serve.answerer import Answerer

if TYPE_CHECKING:
    from llmops.index.hybrid import RetrievalHit


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

    def retrieve(self, query: str, k: int) -> list[RetrievalHit]:
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
    if champion.backend == "base":  # the base model is the champion (no adapter): see evaluation.baseline
        return trained_chat_model("local", champion.model_id, None, settings)
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
    from llmops.pii.redact import Redactor
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
        known_ids=known_generation_ids(log_root, params.serve.feedback_window_days, params.serve.max_known_generations),
    )


def known_generation_ids(
    log_root: Path, days: int, limit: int, *, today: date | None = None
) -> list[tuple[str, str | None, float]]:
    """(id, key that asked, unix time) of the answers of the last ``days`` days in the log, oldest first, at
    most the ``limit`` newest: feedback for answers given before a restart is accepted, and a long log
    costs the service neither start-up time nor memory (only the recent date partitions are read)."""
    today = today or datetime.now(UTC).date()
    first = (today - timedelta(days=days)).isoformat()
    days_dirs = sorted(d for d in log_root.glob("generations/date=*") if d.name.removeprefix("date=") >= first)
    ids: deque[tuple[str, str | None, float]] = deque(maxlen=limit)  # memory: one day's ids at most, then `limit`
    for day in days_dirs:
        rows = []
        for part in day.glob("part-*.jsonl"):
            with part.open(encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    try:
                        record = json.loads(line)
                        at = datetime.fromisoformat(record["ts"]).timestamp()
                        rows.append((str(record["generation_id"]), record.get("key_name"), at))
                    except (ValueError, KeyError, TypeError, AttributeError):
                        continue  # a bad line is the nightly ingestion's to quarantine
        ids.extend(sorted(rows, key=lambda r: r[2]))
    return list(ids)
