"""The base model as a model: the serving configuration with no adapter (base model + prompt + RAG).

It is evaluated on the gate set and registered as the first champion, so the first adapter -- like every
later one -- has to beat something measured. A champion's per-question scores are stored with its record;
they stay valid while the :func:`evaluation_key` (gate set, index, prompt, decoding, score field) is the
same, and are recomputed (:func:`score_model`) when it changes -- e.g. a new index version.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from llmops import workspace as ws
from llmops.config import Params, Settings
from llmops.llm.base import ChatModel
from llmops.reports.evaluation import EvaluationReport, SampleRow

BASE_BACKEND = "base"  # the registry backend of a base-model record (no artifact)


def _file_md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest() if path.exists() else "none"


def evaluation_key(project_dir: Path, params: Params) -> str:
    """What a stored per-question score depends on besides the model; a different key means re-score."""
    parts = {
        "gate_set": _file_md5(project_dir / params.evaluate.gate_questions),
        "index": _file_md5(project_dir / ws.INDEX_MANIFEST),
        "system_prompt": params.base.system_prompt,
        "evaluate": params.evaluate.model_dump(include={"answer_questions", "max_new_tokens", "context_chars", "k"}),
        "top_k": params.serve.top_k,  # answers see the serving retrieval depth
        "index_params": params.index.model_dump(
            include={"embedder", "retriever", "dense_weight", "bm25_weight", "candidates", "chunk_words", "chunk_overlap"}
        ),
        "score_field": params.gate.score_field,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def base_model_id(params: Params) -> str:
    """Registry id of the base model's record: the model the configured backend fine-tunes."""
    from llmops.llm.local import BASE_MODEL_NAME

    return params.finetune.openai_model if params.finetune.backend == "openai" else BASE_MODEL_NAME


def base_chat_model(params: Params, settings: Settings) -> ChatModel:
    """The base model with no adapter, served as the answer service would (local SmolLM2 or the OpenAI model)."""
    from llmops.llm.trained import trained_chat_model

    backend = params.finetune.backend if params.finetune.backend == "openai" else "local"
    return trained_chat_model(backend, base_model_id(params), None, settings)


def score_model(
    project_dir: Path, settings: Settings, params: Params, model: ChatModel, *, progress: bool = False
) -> tuple[EvaluationReport, list[SampleRow]]:
    """Evaluate ``model`` on the workspace's gate set over the serving index, exactly as the evaluate stage
    does: the metrics.json report and the per-question rows."""
    from llmops.evaluation.suite import evaluate_model
    from llmops.index.embed import make_embedder
    from llmops.index.hybrid import open_retriever
    from llmops.index.store import chroma_client
    from llmops.jsonl import read_jsonl
    from llmops.llm.cluster import on_cluster
    from llmops.records import EvalQuestion

    embedder = make_embedder(params.index.embedder, params.index, settings)
    return evaluate_model(
        read_jsonl(project_dir / params.evaluate.gate_questions, EvalQuestion),
        open_retriever(chroma_client(settings), embedder, params.index),
        on_cluster(model, settings),  # answers on the Dask cluster when LLMOPS_DASK_ADDRESS is set
        embedder,
        params,
        settings,
        progress=progress,
    )


def champion_chat_model(record: Any, registry: Any, settings: Settings) -> ChatModel:
    """A registered model as it serves: the base (no adapter), an OpenAI model, or base + its LoRA adapter."""
    from llmops.llm.trained import trained_chat_model
    from llmops.storage import is_remote

    if record.backend == BASE_BACKEND:
        return trained_chat_model("local", record.model_id, None, settings)
    if record.backend == "openai":
        return trained_chat_model("openai", record.model_id, None, settings)
    adapter = Path(record.artifact_path)
    if is_remote(record.artifact_path):
        adapter = registry.fetch_artifact(record.model_id, settings.path("registry-cache", record.model_id))
    return trained_chat_model("local", record.model_id, adapter, settings)


def ensure_champion(registry: Any, project_dir: Path, settings: Settings, params: Params) -> Any:
    """The champion, with per-question scores valid for this workspace's :func:`evaluation_key`.

    No champion yet: the base model is evaluated on the gate set and registered as champion (so the first
    adapter must beat it). A champion from an older registry that has no base-model record (it became
    champion before the base was a model) is gated against the base now: the base is evaluated and
    registered, and stays champion unless the old one passes the gate. A champion scored under another key
    (new index version, gate set, prompt or decoding) is re-scored. Returns the champion's
    :class:`~llmops.finetune.registry.ModelRecord`.
    """
    from llmops.evaluation.gate import scores_from_samples
    from llmops.finetune.registry import ModelRecord
    from llmops.versioning import data_revision

    key = evaluation_key(project_dir, params)
    champion = registry.champion()
    legacy = champion is not None and champion.model_id != base_model_id(params) and registry.get(base_model_id(params)) is None
    if champion is not None and not legacy and champion.eval_key == key and champion.eval_scores:
        return champion
    if champion is None or legacy:
        why = "no champion yet" if champion is None else f"champion {champion.model_id} was never compared with the base model"
        print(f"{why}: evaluating the base model (prompt + RAG, no adapter) on the gate set")
        evaluation, rows = score_model(project_dir, settings, params, base_chat_model(params, settings), progress=True)
        record = ModelRecord(
            model_id=base_model_id(params),
            base_model=base_model_id(params),
            backend="openai" if params.finetune.backend == "openai" else BASE_BACKEND,
            data_rev=data_revision(project_dir),
            reason="base model: the serving configuration with no adapter",
            evaluation=evaluation.as_dict(),
            eval_scores=scores_from_samples(rows, params.gate.score_field),
            eval_key=key,
        )
        registry.register(record, None)
        if champion is None:
            return registry.set_status(
                record.model_id, "champion", ["base model (prompt + RAG, no adapter): the first champion every adapter must beat"]
            )
        return _gate_against_base(registry, project_dir, settings, params, champion, record, key)
    print(f"re-scoring champion {champion.model_id} on the gate set (inputs changed: {champion.eval_key or 'none'} -> {key})")
    return _rescore(registry, project_dir, settings, params, champion, key)


def _rescore(registry: Any, project_dir: Path, settings: Settings, params: Params, record: Any, key: str) -> Any:
    from llmops.evaluation.gate import scores_from_samples

    model = champion_chat_model(record, registry, settings)
    evaluation, rows = score_model(project_dir, settings, params, model, progress=True)
    scores = scores_from_samples(rows, params.gate.score_field)
    return registry.update_evaluation(record.model_id, evaluation.as_dict(), scores, key)


def _gate_against_base(
    registry: Any, project_dir: Path, settings: Settings, params: Params, champion: Any, base: Any, key: str
) -> Any:
    """An older champion that never met the base model goes through the gate against it now (re-scored
    first when its stored scores are from other inputs); it stays champion only if it passes, otherwise
    the base becomes champion and the old one is marked rejected with the gate's reasons."""
    from llmops.evaluation.gate import decide

    if champion.eval_key != key or not champion.eval_scores:
        champion = _rescore(registry, project_dir, settings, params, champion, key)
    decision = decide(
        champion.evaluation,
        base.evaluation,
        params.gate,
        challenger_scores=champion.eval_scores,
        champion_scores=base.eval_scores,
        seed=params.base.seed,
    )
    decision.evidence["champion_id"] = base.model_id
    reasons = [f"gated against the base model (it became champion before the base was registered): {r}" for r in decision.reasons]
    if decision.promote:  # base champion first, then the old one again: a rollback returns to the base
        registry.set_status(base.model_id, "champion", [f"base model, registered after {champion.model_id}"])
        return registry.set_status(champion.model_id, "champion", reasons, evidence=decision.evidence)
    registry.set_status(base.model_id, "champion", [f"{champion.model_id} did not pass the gate against the base model"])
    registry.set_status(champion.model_id, "rejected", reasons, evidence=decision.evidence)
    return registry.champion()
