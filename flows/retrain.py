"""The retrain flow: weekly, manual (with a reason and parameter overrides) or monitor-triggered.

It trains only when :func:`llmops.finetune.triggers.should_retrain` says so (enough new examples since
the champion's data, changed fine-tune params, or ``force``), and one at a time (a lock under
LLMOPS_HOME, on top of the deployment's ``concurrency_limit: 1``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

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
    retrain_check,
    run_stage,
)
from llmops.config import Settings, apply_overrides
from llmops.finetune.triggers import run_lock
from llmops.runtime import prepare_environment
from llmops.workspace import BEFORE_TRAINING, TRAINING


@flow(name="retrain", log_prints=True, timeout_seconds=12 * 3600)
def retrain(
    reason: str = "scheduled weekly retrain", overrides: dict[str, str] | None = None, project_dir: str = ".", force: bool = False
) -> dict:
    """Refresh data, decide, then force fine-tuning and evaluation; ``overrides`` ("finetune.max_steps": "50")
    are written to params.yaml first, as ``dvc exp run --set-param`` would, so the lineage stays exact."""
    settings = Settings()
    prepare_environment(settings)  # deployments start here, not in the CLI: same edge set-up
    started = datetime.now(UTC)
    with run_lock(settings.path("locks", "retrain.lock")):
        if overrides:
            changed = apply_overrides(Path(project_dir) / "params.yaml", overrides)
            print(f"params.yaml overrides: {changed}")
        configure_remote(project_dir)
        forced = forced_stages(project_dir)
        stage_runs = [run_stage(project_dir, s, force=s in forced) for s in BEFORE_TRAINING]
        decision = retrain_check(project_dir, force=force)
        print(f"retrain decision: {decision.reason}")
        model = gate = None
        if decision.run:
            stage_runs += [run_stage(project_dir, s, force=True) for s in TRAINING]
        pushed = push(project_dir)
        if decision.run:
            model, gate = record_model(project_dir, reason=reason, flow_run_id=str(flow_run.get_id() or "local"))
            if model.status == "pending":  # gate.require_approval: a person decides
                model = await_approval(project_dir, model)
        run_id = str(flow_run.get_id() or "local")
        observe(project_dir, "retrain", run_id, evaluated=decision.run, monitored=False)  # history, trend, alert
        return publish_summary(
            project_dir,
            flow="retrain",
            run_id=run_id,
            started=started,
            stages=stage_runs,
            pushed=pushed,
            model=model,
            decision=gate,
            reason=reason,
            skipped=None if decision.run else decision.reason,
        )
