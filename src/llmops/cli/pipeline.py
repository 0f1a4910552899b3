"""Pipeline commands: run nightly, retrain, monitor, status, serve-schedules."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmops.cli.common import fail as _fail
from llmops.config import Settings
from llmops.errors import LLMOpsError

if TYPE_CHECKING:
    from prefect import Flow

    from llmops.reports.run import RunRecord

app = typer.Typer()  # commands registered at top level by llmops.cli
run_app = typer.Typer(help="Run a pipeline flow now (Prefect flow run, DVC skips unchanged stages).", no_args_is_help=True)

ProjectDir = Annotated[Path, typer.Option("--project-dir", "-C", help="DVC workspace (dvc.yaml, params.yaml).")]


def _prepare(project_dir: Path) -> Settings:
    """Edge set-up: settings from env/.env, state dir, offline env, working directory."""
    from llmops.runtime import prepare_environment

    project_dir = project_dir.resolve()
    if not (project_dir / "dvc.yaml").exists():
        raise LLMOpsError(f"{project_dir} has no dvc.yaml: run from the project root or pass --project-dir")
    settings = Settings()
    prepare_environment(settings)
    import os

    os.chdir(project_dir)  # stage commands and params.yaml paths are relative to the workspace
    return settings


# The flows live in the project (flows/, beside pipelines/), not in the package: the CLI runs them by entrypoint,
# the flows prefect.yaml deploys (flows/nightly.py:nightly), imported from the project directory.
FLOW_ENTRYPOINTS = {"nightly": "flows.nightly:nightly", "retrain": "flows.retrain:retrain", "monitor": "flows.monitor:monitor"}


def _flow(name: str) -> Flow[..., RunRecord]:
    """The project's flow ``name`` (call after :func:`_prepare`: the working directory is the project)."""
    from prefect.flows import load_flow_from_entrypoint

    module = FLOW_ENTRYPOINTS[name].partition(":")[0]
    try:
        return load_flow_from_entrypoint(FLOW_ENTRYPOINTS[name], use_placeholder_flow=False)
    except ModuleNotFoundError as exc:
        if exc.name not in {"flows", module}:
            raise  # an import inside the flow failed: its own error
        raise LLMOpsError(f"{Path.cwd()} has no {module} ({exc}): run from the project root or pass --project-dir") from exc


def _print_summary(summary: RunRecord) -> None:
    from llmops.runs.summary import summary_markdown

    typer.echo(summary_markdown(summary))


SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a param for this run only, e.g. --set finetune.max_steps=50 (params.yaml is not written)."
    ),
]


def _overrides(items: list[str] | None, project_dir: Path) -> dict[str, str]:
    """Parse and validate ``--set KEY=VALUE`` against the project's params.yaml, before anything runs."""
    from llmops.isolation import check_overrides

    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--set {item!r}: expected KEY=VALUE")
        overrides[key] = value
    if overrides:
        if not (project_dir / "params.yaml").exists():
            raise LLMOpsError(f"{project_dir.resolve()} has no params.yaml: run from the project root or pass --project-dir")
        check_overrides(project_dir.resolve(), overrides)
    return overrides


def _supervised(args: list[str], project_dir: Path) -> None:
    """Run this flow command in a supervised child process (see :func:`llmops.runtime.supervise`) unless this
    is that child: SIGTERM/SIGINT stop the run within seconds, the run is recorded as crashed, no Prefect
    server is left behind. Exits with the child's code (128 + signal when stopped)."""
    import os
    import signal

    from llmops.runtime import SUPERVISED_ENV, supervise

    if os.environ.get(SUPERVISED_ENV) == "1":
        return
    if not (project_dir.resolve() / "dvc.yaml").exists():
        raise LLMOpsError(f"{project_dir.resolve()} has no dvc.yaml: run from the project root or pass --project-dir")
    code, received, pid = supervise([sys.executable, "-m", "llmops", *args, "--project-dir", str(project_dir.resolve())])
    if received is not None:
        from llmops.runs.records import mark_crashed, refresh_trend

        name = signal.Signals(received).name
        settings = Settings()
        marked = mark_crashed(settings, pid, f"stopped by {name}")
        try:
            refresh_trend(settings)  # the stopped process left the page to this one
        except Exception as exc:  # an unreachable history store: the run record above still holds the crash
            typer.secho(f"the trend page was not refreshed: {type(exc).__name__}: {exc}", err=True)
        typer.secho(f"run stopped by {name}" + (f"; recorded as crashed in {marked[0]}" if marked else ""), err=True, fg="red")
    raise typer.Exit(code)


@run_app.command("nightly")
def run_nightly(
    project_dir: ProjectDir = Path("."),
    force: Annotated[bool, typer.Option(help="Rerun every stage even if DVC sees no change.")] = False,
    set_: SetOption = None,
) -> None:
    """Run the nightly flow: the whole DAG, push to the DVC remote, promotion gate, run summary."""
    try:
        overrides = _overrides(set_, project_dir)
        _supervised(["run", "nightly", *(["--force"] if force else []), *_set_args(set_)], project_dir)
        _prepare(project_dir)
        _print_summary(_flow("nightly")(project_dir=".", force=force, overrides=overrides or None))
    except LLMOpsError as exc:
        _fail(exc)


def _set_args(items: list[str] | None) -> list[str]:
    return [arg for item in items or [] for arg in ("--set", item)]


@app.command()
def retrain(
    reason: Annotated[str, typer.Option(help="Why: recorded in the model's lineage and the run summary.")],
    set_: SetOption = None,
    project_dir: ProjectDir = Path("."),
    force: Annotated[
        bool, typer.Option(help="Train even with fewer than retrain.min_new_examples new examples and unchanged params.")
    ] = False,
) -> None:
    """Retrain now: refresh data, fine-tune + evaluate (unless nothing new), run the promotion gate."""
    try:
        overrides = _overrides(set_, project_dir)
        _supervised(["retrain", "--reason", reason, *(["--force"] if force else []), *_set_args(set_)], project_dir)
        _prepare(project_dir)
        _print_summary(_flow("retrain")(reason=reason, overrides=overrides or None, project_dir=".", force=force))
    except LLMOpsError as exc:
        _fail(exc)


monitor_app = typer.Typer(
    help="Drift monitoring. Without a subcommand: run the monitor flow (refresh the current batch, write reports/drift/).",
    invoke_without_command=True,
)


@monitor_app.callback()
def monitor(ctx: typer.Context, project_dir: ProjectDir = Path("."), set_: SetOption = None) -> None:
    """Run the monitor flow, unless a subcommand is given."""
    if ctx.invoked_subcommand is not None:
        if set_:
            raise typer.BadParameter(f"--set is for the monitor flow, not for `llmops monitor {ctx.invoked_subcommand}`")
        return
    try:
        overrides = _overrides(set_, project_dir)
        _supervised(["monitor", *_set_args(set_)], project_dir)
        _prepare(project_dir)
        _print_summary(_flow("monitor")(project_dir=".", overrides=overrides or None))
    except LLMOpsError as exc:
        _fail(exc)


@app.command()
def status(
    project_dir: ProjectDir = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Last runs, current champion model, index version and data revision."""
    from llmops.runs.status import status as run_status

    try:
        settings = Settings()
        info = run_status(project_dir.resolve(), settings)
    except LLMOpsError as exc:
        _fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(info.as_dict(), indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]state dir[/] {info.state_dir}   [bold]data rev[/] {info.data_rev}   "
        f"[bold]index serving[/] {info.index_version or 'none yet'} (manifest {info.index_manifest})"
    )
    champ = info.champion
    if champ:
        ans, ret = champ.evaluation.get("answers") or {}, champ.evaluation.get("retrieval") or {}
        console.print(
            f"[bold]champion[/] {champ.model_id} (data rev {champ.data_rev}, {champ.reason}) "
            f"token_f1={ans.get('token_f1')} recall@5={ret.get('recall@5')}"
        )
    else:
        console.print("[bold]champion[/] none yet: run `llmops run nightly`")
    table = Table("flow", "state", "started", "data rev", "ran", "skipped", title="last runs")
    for r in info.last_runs:
        ran = r.ran()
        state: str = r.state
        if r.state in {"failed", "crashed"}:
            state = f"[red]{r.state}[/] in {r.stage or '?'}: {(r.error or '')[:120]}"
        elif r.state == "running":
            state = f"running ({r.stage or 'starting'})"
        table.add_row(r.flow, state, r.started[:19], r.data_rev or "-", ", ".join(ran) or "-", str(len(r.stages) - len(ran)))
    console.print(table)


@app.command("serve-schedules")
def serve_schedules(
    project_dir: ProjectDir = Path("."),
    timezone: Annotated[str, typer.Option(help="Timezone of the cron schedules.")] = "UTC",
) -> None:
    """Serve the deployments locally (nightly 02:00, weekly retrain, monitor every 6 h) until Ctrl-C.

    Uses the Prefect API in PREFECT_API_URL when set (a Prefect server), else a temporary local server it starts
    and stops (log under $LLMOPS_HOME/logs).
    For work pools and workers use `prefect deploy --all` with prefect.yaml instead.
    """
    try:
        settings = _prepare(project_dir)
        from llmops.runtime import prefect_api

        with prefect_api(settings, "serve-schedules") as url:
            if url:
                typer.echo(f"temporary Prefect server on {url}; set PREFECT_API_URL to use your own")
            _serve_schedules(timezone)
    except LLMOpsError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        typer.echo("stopped serving the schedules")


def _serve_schedules(timezone: str) -> None:
    """Serve the three deployments (call with a Prefect API configured)."""
    from prefect import serve
    from prefect.events import DeploymentEventTrigger
    from prefect.schedules import Cron

    from llmops.monitoring.triggers import DRIFT_EVENT

    nightly, retrain_flow, monitor_flow = _flow("nightly"), _flow("retrain"), _flow("monitor")

    # Prefect types to_deployment as sync-or-async (RunnerDeployment | Coroutine); called from sync code it
    # returns the RunnerDeployment.
    serve(
        nightly.to_deployment(name="nightly", schedule=Cron("0 2 * * *", timezone=timezone)),  # type: ignore[arg-type]
        retrain_flow.to_deployment(  # type: ignore[arg-type]
            name="retrain",
            schedule=Cron("0 4 * * 0", timezone=timezone),
            parameters={"reason": "scheduled weekly retrain"},
            triggers=[  # the same reaction to the monitor's drift event as in prefect.yaml
                DeploymentEventTrigger(
                    match={"prefect.resource.id": "llmops.project.*"},
                    expect={DRIFT_EVENT},
                    parameters={"reason": "monitor: {{ event.payload.reason }}", "project_dir": "."},
                )
            ],
        ),
        monitor_flow.to_deployment(name="monitor", schedule=Cron("0 */6 * * *", timezone=timezone)),  # type: ignore[arg-type]
    )
