"""Promotion: the retrain policy's check, the evaluated adapter registered behind the gate, approvals, the gate report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmops import workspace as ws
from llmops.config import Params, Settings
from llmops.errors import DataContractError
from llmops.evaluation.gate import decide, load_scores
from llmops.finetune.policy import (
    RetrainDecision,
    data_until,
    load_training_ids,
    recipe_reference,
    save_training_ids,
    should_retrain,
)
from llmops.finetune.registry import ModelRecord, Registry, params_hash
from llmops.reports.evaluation import EvaluationReport, GateDecision
from llmops.reports.training import TrainingReport
from llmops.versioning import data_revision


def record_model(
    project_dir: Path,
    settings: Settings,
    params: Params,
    *,
    reason: str,
    flow_run_id: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[ModelRecord, GateDecision]:
    """Register the workspace's evaluated adapter and let the gate decide whether it becomes champion.

    The champion is made sure of first (the base model, evaluated and registered, when there is none; its
    scores recomputed when the gate set, index or decoding changed), so only the challenger is generated
    each night. With ``gate.require_approval`` a model the gate passes becomes ``pending`` (see
    :func:`apply_approval`), not champion.
    """
    from llmops.evaluation.baseline import ensure_champion, evaluation_key

    registry = Registry.from_settings(settings)
    training = TrainingReport.read(project_dir / ws.ADAPTER)
    model_id = training.model_id
    if model_id is None:
        raise DataContractError(f"{project_dir / ws.ADAPTER} names no trained model in training.json: nothing to gate")
    current = registry.champion()
    if current is not None and current.model_id == model_id:
        return current, GateDecision(
            True, [f"{current.model_id} is already the champion (unchanged model)"], {"not_gated": "already the champion"}
        )
    judged = registry.get(model_id)
    if judged is not None:  # an unchanged adapter the gate (or a person: promote/rollback) already decided on
        return judged, GateDecision(
            False,
            [f"{judged.model_id} was already judged ({judged.status}); not re-gated: `llmops models promote` overrides"],
            {"not_gated": f"already judged ({judged.status})"},
        )
    champion = ensure_champion(registry, project_dir, settings, params)
    evaluation = EvaluationReport.read(project_dir / ws.EVAL_METRICS).as_dict()
    scores = load_scores(project_dir / ws.EVAL_SAMPLES, params.gate.score_field)
    record = ModelRecord(
        model_id=model_id,
        base_model=training.base_model,
        backend=training.backend or params.finetune.backend,
        data_rev=data_revision(project_dir),
        params_hash=params_hash(params.finetune.model_dump()),
        reason=reason,
        training=training.summary()  # without the loss curves
        | {"data_until": data_until(project_dir / ws.TRAINSET / "provenance.jsonl")}
        | ({"overrides": overrides} if overrides else {}),  # the run's params overrides: lineage
        evaluation=evaluation,
        eval_scores=scores,
        eval_key=evaluation_key(project_dir, params),
    )
    record = registry.register(record, project_dir / ws.ADAPTER)
    # The ids of its training examples: the retrain policy counts what arrived since by content, not by date.
    save_training_ids(registry, record.model_id, project_dir / ws.TRAINSET / "provenance.jsonl")
    decision = decide(
        evaluation,
        champion.evaluation,
        params.gate,
        challenger_scores=scores,
        champion_scores=champion.eval_scores,
        seed=params.base.seed,
    )
    decision.evidence["champion_id"] = champion.model_id
    if flow_run_id:
        decision.evidence["flow_run_id"] = flow_run_id
    status = "rejected"
    if decision.promote:
        status = "pending" if params.gate.require_approval else "champion"
        if status == "pending":
            decision.reasons.append("gate passed; waiting for approval: `llmops models approve|reject " + record.model_id + "`")
    record = registry.set_status(record.model_id, status, decision.reasons, evidence=decision.evidence)  # type: ignore[arg-type]
    return record, decision


def apply_approval(settings: Settings, model_id: str, *, approve: bool, reason: str) -> ModelRecord:
    """A reviewer's verdict on a pending model (from the paused flow's form or the CLI); a model already
    decided (the CLI answered first) is returned as it is."""
    registry = Registry.from_settings(settings)
    record = registry.get(model_id)
    if record is None or record.status != "pending":
        return record  # type: ignore[return-value]
    return registry.decide_pending(model_id, approve=approve, reason=reason)


def resume_approval(model: ModelRecord, *, approve: bool, reason: str) -> str:
    """Resume the flow run paused on ``model`` (its id is in the gate evidence) with the reviewer's verdict;
    returns what happened, for the CLI to print. The registry is already updated, so a flow that cannot be
    reached (finished, timed out, no Prefect API) changes nothing."""
    run_id = model.gate_evidence.get("flow_run_id")
    if not run_id or run_id == "local":
        return ""
    from uuid import UUID

    from prefect.flow_runs import resume_flow_run

    try:
        resume_flow_run(UUID(run_id), run_input={"approve": approve, "reason": reason})
    except Exception as exc:  # not paused any more, unreachable API ...: the registry verdict stands either way
        return f"flow run {run_id} was not resumed ({type(exc).__name__}: {exc}); the registry holds the verdict"
    return f"resumed flow run {run_id}"


def gate_markdown(model: ModelRecord, decision: GateDecision) -> str:
    """The gate report a reviewer reads before approving: decision, reasons and the paired evidence."""
    ev = decision.evidence
    lines = [f"# Gate report: `{model.model_id}` ({model.status})", ""]
    lines += [f"- {r}" for r in decision.reasons]
    if "paired_questions" in ev:
        lines += [
            "",
            "| champion | paired questions | ties | mean diff | CI | p | min. detectable effect |",
            "|---|---|---|---|---|---|---|",
            f"| {ev.get('champion_id')} | {ev['paired_questions']} | {ev.get('ties', '')} | {ev.get('mean_diff', '')} | "
            f"{ev.get('ci', '')} | {ev.get('p_value', '')} | {ev.get('mde', '')} |",
        ]
    return "\n".join(lines)


def retrain_check(project_dir: Path, settings: Settings, params: Params, *, force: bool = False) -> RetrainDecision:
    """Should this retrain train? (enough new examples since the champion's data, changed params, or forced)."""
    registry = Registry.from_settings(settings)
    champion = registry.champion()
    reference = recipe_reference(registry.models(), champion) if champion is not None else None
    return should_retrain(
        project_dir / ws.TRAINSET / "provenance.jsonl",
        reference or champion,
        params_hash(params.finetune.model_dump()),
        params.retrain,
        force=force,
        trained_ids=load_training_ids(registry, reference or champion),  # None: by date (models kept before ids)
    )
