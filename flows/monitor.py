"""The monitor flow: refresh the current data batch and write the drift report."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from flows.retrain import launch_retrain, retrain
from flows.tasks import configure_remote, forced_stages, observe, publish, publish_summary, pull, run_stages
from llmops.config import Settings
from llmops.isolation import isolated_run, serial
from llmops.reports.run import RunRecord
from llmops.runtime import prepare_environment
from llmops.workspace import MONITORING


# Without a Prefect server deployment the triggered retrain runs as a subflow, inside this flow's time limit.
@flow(name="monitor", log_prints=True, timeout_seconds=3 * 3600 + (retrain.timeout_seconds or 0))
def monitor(project_dir: str = ".", overrides: dict[str, str] | None = None) -> RunRecord:
    """Drift of the current batch against the reference window (Evidently HTML + JSON), history and trend
    page; when a threshold is crossed, alert and ask for a retrain (the ``llmops.drift.detected`` event on a
    Prefect server, else the retrain flow here) with the reason recorded.

    ``overrides`` ({"monitor.min_current_rows": "10"}) apply to this run only (its workspace's params.yaml)."""
    settings = Settings()
    prepare_environment(settings)  # deployments start here, not in the CLI: same edge set-up
    run_id = str(flow_run.get_id() or "local")
    with isolated_run(project_dir, settings, flow="monitor", run_id=run_id, overrides=overrides) as run:
        ws = str(run.workspace)
        configure_remote(ws)
        pull(ws)
        stage_runs = run_stages(run, MONITORING, forced_stages(ws))
        run.at("publish")
        # A skipped monitor stage left an earlier run's drift.json: recording it again would re-fire its trigger.
        monitored = any(r.ran for r in stage_runs if r.stage == "monitor")
        with serial(settings, f"monitor {run_id}: publish") as slot:
            slot.stages = publish(run, MONITORING)
            trigger = observe(str(run.project), "monitor", run_id, evaluated=False, monitored=monitored)
            summary = publish_summary(
                str(run.project),
                flow="monitor",
                run_id=run_id,
                started=run.started,
                stages=stage_runs,
                pushed=None,
                reason=f"retrain triggered: {trigger.reason}" if trigger.launch else None,
                overrides=run.overrides,
                publish=slot,
            )
    if trigger.launch:  # after this run's slot and workspace are released: the retrain needs both
        launched = launch_retrain(f"monitor: {trigger.reason}", str(run.project), trigger.deployment, run_id)
        print(f"retrain triggered ({launched}): {trigger.reason}")
    return summary
