"""The nightly flow: the whole DAG in the run's own workspace, then push, promotion gate, publish and summary."""

from __future__ import annotations

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
from llmops.isolation import isolated_run, serial
from llmops.reports.run import RunRecord
from llmops.runtime import prepare_environment
from llmops.workspace import BEFORE_TRAINING, STAGES, TRAINING


@flow(name="nightly", log_prints=True, timeout_seconds=12 * 3600)
def nightly(project_dir: str = ".", force: bool = False, overrides: dict[str, str] | None = None) -> RunRecord:
    """Ingest -> clean -> redact -> index -> trainset -> [finetune -> evaluate when the retrain policy says
    so] -> monitor; push; gate.

    ``overrides`` ({"finetune.max_steps": "2"}) apply to this run only (its workspace's params.yaml)."""
    settings = Settings()
    prepare_environment(settings)  # deployments start here, not in the CLI: same edge set-up
    run_id = str(flow_run.get_id() or "local")
    with isolated_run(project_dir, settings, flow="nightly", run_id=run_id, overrides=overrides) as run:
        ws = str(run.workspace)
        configure_remote(ws)
        pull(ws)
        forced = forced_stages(ws)
        stage_runs = run_stages(run, BEFORE_TRAINING, forced, force=force)
        # Fine-tuning follows the retrain policy, not every change of the training set: a night's few new
        # examples (< retrain.min_new_examples since the champion's data, same fine-tune params) do not retrain.
        decision = retrain_check(ws, force=force)
        print(f"retrain decision: {decision.reason}")
        if decision.run:
            stage_runs += run_stages(run, TRAINING, forced, force=force)
        stage_runs += run_stages(run, STAGES[STAGES.index(TRAINING[-1]) + 1 :], forced, force=force)
        run.at("publish")
        with serial(settings, f"nightly {run_id}: publish") as slot:  # remote, registry, dvc.lock: one run at a time
            pushed = push(ws)
            model, gate = record_model(ws, reason="nightly", flow_run_id=run_id, overrides=run.overrides)
            slot.stages = publish(run, STAGES)
        if model.status == "pending":  # gate.require_approval: a person decides
            model = await_approval(ws, model)
        ran = {r.stage for r in stage_runs if r.ran}  # outputs of skipped stages are an earlier run's: not re-recorded
        with serial(settings, f"nightly {run_id}: history"):
            observe(str(run.project), "nightly", run_id, evaluated="evaluate" in ran, monitored="monitor" in ran)
            return publish_summary(
                str(run.project),
                flow="nightly",
                run_id=run_id,
                started=run.started,
                stages=stage_runs,
                pushed=pushed,
                model=model,
                decision=gate,
                skipped=None if decision.run else decision.reason,
                overrides=run.overrides,
                publish=slot,
            )
