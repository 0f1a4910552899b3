"""The monitor flow: refresh the current data batch and write the drift report."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow
from prefect.runtime import flow_run

from flows.retrain import retrain
from flows.tasks import forced_stages, launch_retrain, observe, publish_summary, run_stage
from llmops.config import Settings
from llmops.runtime import prepare_environment
from llmops.workspace import MONITORING


# Without a Prefect server deployment the triggered retrain runs as a subflow, inside this flow's time limit.
@flow(name="monitor", log_prints=True, timeout_seconds=3 * 3600 + (retrain.timeout_seconds or 0))
def monitor(project_dir: str = ".") -> dict:
    """Drift of the current batch against the reference window (Evidently HTML + JSON), history and trend
    page; when a threshold is crossed, alert and retrain with the reason recorded."""
    prepare_environment(Settings())  # deployments start here, not in the CLI: same edge set-up
    started = datetime.now(UTC)
    forced = forced_stages(project_dir)
    stage_runs = [run_stage(project_dir, s, force=s in forced) for s in MONITORING]
    run_id = str(flow_run.get_id() or "local")
    # A skipped monitor stage left an earlier run's drift.json: recording it again would re-fire its trigger.
    monitored = any(r.ran for r in stage_runs if r.stage == "monitor")
    trigger = observe(project_dir, "monitor", run_id, evaluated=False, monitored=monitored)
    if trigger["launch"]:
        launched = launch_retrain(f"monitor: {trigger['reason']}", project_dir, trigger["deployment"])
        print(f"retrain triggered ({launched}): {trigger['reason']}")
    return publish_summary(
        project_dir,
        flow="monitor",
        run_id=run_id,
        started=started,
        stages=stage_runs,
        pushed=None,
        reason=f"retrain triggered: {trigger['reason']}" if trigger["launch"] else None,
    )
