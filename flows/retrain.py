"""The retrain flow: weekly, manual (with a reason and parameter overrides), or on ``llmops.drift.detected``.

It trains only when :func:`llmops.finetune.policy.should_retrain` says so (enough new examples since
the champion's data, changed fine-tune params, or ``force``), and one at a time (a lock under
LLMOPS_HOME, on top of the deployment's ``concurrency_limit: 1``). It works in its own workspace, so a
nightly run can go on meanwhile; publishing waits for the serial slot.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run

from flows.tasks import (
    await_approval,
    configure_remote,
    forced_stages,
    observe,
    publish,
    publish_summary,
    pull,
    push,
    record_model,
    retrain_check,
    run_stages,
)
from llmops.config import Settings
from llmops.finetune.policy import run_lock
from llmops.isolation import isolated_run, serial
from llmops.reports.run import RunRecord
from llmops.runtime import prepare_environment
from llmops.workspace import BEFORE_TRAINING, TRAINING


@flow(name="retrain", log_prints=True, timeout_seconds=12 * 3600)
def retrain(
    reason: str = "scheduled weekly retrain", overrides: dict[str, str] | None = None, project_dir: str = ".", force: bool = False
) -> RunRecord:
    """Refresh data, decide, then force fine-tuning and evaluation; ``overrides`` ("finetune.max_steps": "50")
    are validated first and apply to this run only (its workspace's params.yaml), recorded in the run
    summary and the model's lineage; the project's params.yaml is never written."""
    settings = Settings()
    prepare_environment(settings)  # deployments start here, not in the CLI: same edge set-up
    run_id = str(flow_run.get_id() or "local")
    with (
        run_lock(settings.path("locks", "retrain.lock")),
        isolated_run(project_dir, settings, flow="retrain", run_id=run_id, overrides=overrides) as run,
    ):
        ws = str(run.workspace)
        configure_remote(ws)
        pull(ws)
        stage_runs = run_stages(run, BEFORE_TRAINING, forced_stages(ws))
        decision = retrain_check(ws, force=force)
        print(f"retrain decision: {decision.reason}")
        model = gate = None
        if decision.run:
            stage_runs += run_stages(run, TRAINING, set(), force=True)
        run.at("publish")
        with serial(settings, f"retrain {run_id}: publish") as slot:
            pushed = push(ws)
            if decision.run:
                model, gate = record_model(ws, reason=reason, flow_run_id=run_id, overrides=run.overrides)
            slot.stages = publish(run, [r.stage for r in stage_runs])
        if model is not None and model.status == "pending":  # gate.require_approval: a person decides
            model = await_approval(ws, model)
        with serial(settings, f"retrain {run_id}: history"):
            observe(str(run.project), "retrain", run_id, evaluated=decision.run, monitored=False)  # history, trend, alert
            return publish_summary(
                str(run.project),
                flow="retrain",
                run_id=run_id,
                started=run.started,
                stages=stage_runs,
                pushed=pushed,
                model=model,
                decision=gate,
                reason=reason,
                skipped=None if decision.run else decision.reason,
                overrides=run.overrides,
                publish=slot,
            )


def launch_retrain(reason: str, project_dir: str, deployment: str, run_id: str = "local") -> str:
    """Start retraining. With a Prefect server that knows ``deployment``: emit ``llmops.drift.detected``
    and let the deployment's trigger (prefect.yaml) start the run. Without one: the retrain flow as a subflow."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        from llmops.monitoring.triggers import emit_drift_event

        try:
            with get_client(sync_client=True) as client:
                client.read_deployment_by_name(deployment)
        except ObjectNotFound:
            pass  # no such deployment on this server: run it here instead
        else:
            event = emit_drift_event(reason, run_id=run_id, project=Path(project_dir).resolve().name)
            return f"event {event}: the trigger of deployment {deployment} starts the retrain"
    retrain(reason=reason, project_dir=project_dir)
    return "retrain subflow"
