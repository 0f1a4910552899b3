"""The nightly flow: the whole DAG, stage by stage through DVC, then push, promotion gate and summary."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow
from prefect.runtime import flow_run

from flows.tasks import (
    await_approval,
    configure_remote,
    forced_stages,
    observe,
    publish_summary,
    push,
    record_model,
    run_stage,
)
from llmops.config import Settings
from llmops.runtime import prepare_environment
from llmops.workspace import STAGES


@flow(name="nightly", log_prints=True, timeout_seconds=12 * 3600)
def nightly(project_dir: str = ".", force: bool = False) -> dict:
    """Ingest -> clean -> redact -> index -> trainset -> finetune -> evaluate -> monitor; push; gate."""
    prepare_environment(Settings())  # deployments start here, not in the CLI: same edge set-up
    started = datetime.now(UTC)
    configure_remote(project_dir)
    forced = forced_stages(project_dir)
    stage_runs = [run_stage(project_dir, s, force=force or s in forced) for s in STAGES]
    pushed = push(project_dir)
    model, decision = record_model(project_dir, reason="nightly", flow_run_id=str(flow_run.get_id() or "local"))
    if model.status == "pending":  # gate.require_approval: a person decides
        model = await_approval(project_dir, model)
    ran = {r.stage for r in stage_runs if r.ran}  # outputs of skipped stages are an earlier run's: not re-recorded
    observe(
        project_dir, "nightly", str(flow_run.get_id() or "local"), evaluated="evaluate" in ran, monitored="monitor" in ran
    )  # history, trend, alert
    return publish_summary(
        project_dir,
        flow="nightly",
        run_id=str(flow_run.get_id() or "local"),
        started=started,
        stages=stage_runs,
        pushed=pushed,
        model=model,
        decision=decision,
    )
