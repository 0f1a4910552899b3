"""Tasks shared by the flows: one task per DVC stage (DVC skips unchanged stages), push, promotion."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.input import RunInput

from llmops import isolation, versioning
from llmops.config import Params, Settings, load_params
from llmops.data.purge import protect_private
from llmops.finetune.policy import RetrainDecision
from llmops.finetune.registry import ModelRecord
from llmops.isolation import IsolatedRun
from llmops.reports.evaluation import GateDecision
from llmops.reports.observe import ObserveResult
from llmops.reports.run import PublishSlot, RunRecord
from llmops.runs import promotion, staleness, summary


class StagePolicy(TypedDict, total=False):
    """Task options of one stage (keyword arguments of ``Task.with_options``)."""

    retries: int
    retry_delay_seconds: int
    timeout_seconds: int


# Operational policy per stage: retries only where I/O can fail transiently; timeouts for every stage.
STAGE_POLICY: dict[str, StagePolicy] = {
    "ingest": {"retries": 2, "retry_delay_seconds": 10, "timeout_seconds": 1800},
    "clean": {"retries": 0, "timeout_seconds": 1800},
    "redact": {"retries": 0, "timeout_seconds": 3600},
    "feedback": {"retries": 1, "retry_delay_seconds": 10, "timeout_seconds": 1800},
    "index": {"retries": 1, "retry_delay_seconds": 10, "timeout_seconds": 3600},
    "gateset": {"retries": 0, "timeout_seconds": 600},
    "trainset": {"retries": 0, "timeout_seconds": 1800},
    "finetune": {"retries": 0, "timeout_seconds": 6 * 3600},
    "evaluate": {"retries": 1, "retry_delay_seconds": 10, "timeout_seconds": 3600},
    "monitor": {"retries": 0, "timeout_seconds": 1800},
}


@task(name="stage")
def _run_stage(project_dir: str, stage: str, force: bool = False) -> versioning.StageRun:
    run = versioning.repro_stage(Path(project_dir), stage, force=force)
    if run.ran:  # DVC commits outputs with the umask: the personal data before the boundary is made owner-only
        protect_private(Path(project_dir))
    return run


def run_stage(project_dir: str, stage: str, force: bool = False) -> versioning.StageRun:
    """Run one DVC stage as its own task run, named after the stage, with that stage's policy."""
    return _run_stage.with_options(name=stage, **STAGE_POLICY[stage])(project_dir, stage, force)


# Stages that write shared state while they run (the index stage refreshes Chroma and its serving alias).
SHARED_STAGES = {"index"}


def run_stages(run: IsolatedRun, stages: list[str], forced: set[str], force: bool = False) -> list[versioning.StageRun]:
    """Run ``stages`` in the run's workspace, in order; the ones that write shared state hold the serial slot."""
    done = []
    for stage in stages:
        run.at(stage)
        if stage in SHARED_STAGES:
            with isolation.serial(Settings(), f"{run.flow} {stage} stage"):
                done.append(run_stage(str(run.workspace), stage, force=force or stage in forced))
        else:
            done.append(run_stage(str(run.workspace), stage, force=force or stage in forced))
    run.at(None)
    return done


@task(name="dvc-pull", retries=2, retry_delay_seconds=15, timeout_seconds=1800)
def pull(workspace: str) -> int:
    """The outputs of the workspace's dvc.lock: from the shared cache, else the DVC remote."""
    return versioning.pull(Path(workspace))


@task(name="publish", retries=1, retry_delay_seconds=5)
def publish(run: IsolatedRun, stages: list[str]) -> list[str]:
    """The run's dvc.lock entries into the project's dvc.lock, outputs checked out there (hold the slot)."""
    return isolation.publish_lock(run.project, run.workspace, stages)


@task(name="configure-remote", retries=1)
def configure_remote(project_dir: str) -> str:
    return versioning.configure_remote(Path(project_dir), Settings())


@task(name="dvc-push", retries=3, retry_delay_seconds=15, timeout_seconds=1800)
def push(project_dir: str) -> int:
    return versioning.push(Path(project_dir))


@task(name="forced-stages")
def forced_stages(project_dir: str) -> set[str]:
    return staleness.forced_stages(load_params(Path(project_dir) / "params.yaml"), Settings(), Path(project_dir))


@task(name="promotion-gate")
def record_model(
    project_dir: str, reason: str, flow_run_id: str | None = None, overrides: dict | None = None
) -> tuple[ModelRecord, GateDecision]:
    params: Params = load_params(Path(project_dir) / "params.yaml")
    model, decision = promotion.record_model(
        Path(project_dir), Settings(), params, reason=reason, flow_run_id=flow_run_id, overrides=overrides
    )
    create_markdown_artifact(key="gate-report", markdown=promotion.gate_markdown(model, decision), description="promotion gate")
    return model, decision


class Approval(RunInput):
    """What a reviewer answers when the flow pauses for approval (Prefect UI form)."""

    approve: bool
    reason: str = ""


def await_approval(project_dir: str, model: ModelRecord) -> ModelRecord:
    """Pause this flow run until a reviewer approves or rejects the pending model -- in the Prefect UI (form)
    or with `llmops models approve|reject` -- for at most ``gate.approval_timeout_s``; then the model stays
    pending and the CLI can still decide. Call from a flow body (a pause cannot happen inside a task)."""
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run

    params = load_params(Path(project_dir) / "params.yaml")
    print(f"{model.model_id} passed the gate; paused for approval (`llmops models approve|reject {model.model_id}`)")
    try:
        answer = pause_flow_run(wait_for_input=Approval, timeout=params.gate.approval_timeout_s, key=f"approve-{model.model_id}")
    except FlowPauseTimeout:
        print(f"no answer within {params.gate.approval_timeout_s} s: {model.model_id} stays pending")
        return model
    return promotion.apply_approval(Settings(), model.model_id, approve=answer.approve, reason=answer.reason or "flow resumed")


@task(name="run-summary")
def publish_summary(
    project_dir: str,
    *,
    flow: str,
    run_id: str,
    started: datetime,
    stages: list[versioning.StageRun],
    pushed: int | None,
    model: ModelRecord | None = None,
    decision: GateDecision | None = None,
    reason: str | None = None,
    skipped: str | None = None,
    overrides: dict[str, Any] | None = None,
    publish: PublishSlot | None = None,
) -> RunRecord:
    """The run's summary (its run record, see :func:`llmops.runs.summary.write_run_summary`) and its artifact."""
    record = summary.write_run_summary(
        Path(project_dir),
        Settings(),
        flow=flow,
        run_id=run_id,
        started=started,
        stages=stages,
        pushed=pushed,
        model=model,
        decision=decision,
        reason=reason,
        skipped=skipped,
        overrides=overrides,
        publish=publish,
    )
    create_markdown_artifact(
        key=f"{record.flow}-summary", markdown=summary.summary_markdown(record), description="llmops run summary"
    )
    return record


@task(name="observe", retries=1, retry_delay_seconds=10)
def observe(project_dir: str, flow: str, run_id: str, evaluated: bool, monitored: bool) -> ObserveResult:
    """History entry, retrain decision, trend page and alert for this run; the artifact links the trend page."""
    from llmops.monitoring.monitor import observe_workspace

    params = load_params(Path(project_dir) / "params.yaml")
    result = observe_workspace(
        Path(project_dir), Settings(), params.monitor, flow=flow, run_id=run_id, evaluated=evaluated, monitored=monitored
    )
    create_markdown_artifact(
        key=f"{flow}-monitoring",
        markdown=f"**Retrain trigger:** {result.reason}\n\n[trend report](file://{result.trend_page})",
        description="llmops history and triggers",
    )
    return result


@task(name="retrain-check")
def retrain_check(project_dir: str, force: bool = False) -> RetrainDecision:
    params: Params = load_params(Path(project_dir) / "params.yaml")
    return promotion.retrain_check(Path(project_dir), Settings(), params, force=force)
