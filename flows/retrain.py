"""The retrain flow: manual (with a reason and parameter overrides) or weekly. Always trains anew."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run

from flows.tasks import configure_remote, forced_stages, observe, publish_summary, push, record_model, run_stage
from llmops.config import Settings, apply_overrides
from llmops.runtime import prepare_environment

UPSTREAM = ["ingest", "clean", "redact", "feedback", "index", "trainset"]


@flow(name="retrain", log_prints=True, timeout_seconds=12 * 3600)
def retrain(reason: str = "scheduled weekly retrain", overrides: dict[str, str] | None = None, project_dir: str = ".") -> dict:
    """Refresh data, then force fine-tuning and evaluation; ``overrides`` ("finetune.max_steps": "50")
    are written to params.yaml first, as ``dvc exp run --set-param`` would, so the lineage stays exact."""
    prepare_environment(Settings())  # deployments start here, not in the CLI: same edge set-up
    started = datetime.now(UTC)
    if overrides:
        changed = apply_overrides(Path(project_dir) / "params.yaml", overrides)
        print(f"params.yaml overrides: {changed}")
    configure_remote(project_dir)
    forced = forced_stages(project_dir)
    stage_runs = [run_stage(project_dir, s, force=s in forced) for s in UPSTREAM]
    stage_runs += [run_stage(project_dir, s, force=True) for s in ("finetune", "evaluate")]
    pushed = push(project_dir)
    model, decision = record_model(project_dir, reason=reason)
    observe(project_dir, "retrain", str(flow_run.get_id() or "local"), evaluated=True, monitored=False)  # history, trend, alert
    return publish_summary(
        project_dir,
        flow="retrain",
        run_id=str(flow_run.get_id() or "local"),
        started=started,
        stages=stage_runs,
        pushed=pushed,
        model=model,
        decision=decision,
        reason=reason,
    )
