"""The CLI's quick paths: help, status on a fresh state dir, argument errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from llmops.cli import app

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("run", "retrain", "monitor", "status", "serve-schedules"):
        assert cmd in result.output


def test_status_on_a_fresh_state_dir(settings_env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["status", "--json", "-C", str(tmp_path)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["champion"] is None and info["last_runs"] == [] and info["data_rev"] == "none"


def test_run_outside_a_project_is_a_clear_error(settings_env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "nightly", "-C", str(tmp_path)])
    assert result.exit_code == 1
    assert "has no dvc.yaml" in result.output


def test_retrain_rejects_malformed_override(settings_env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["retrain", "--reason", "x", "--set", "finetune.max_steps", "-C", str(tmp_path)])
    assert result.exit_code != 0
    assert "KEY=VALUE" in result.output


def test_the_cli_runs_the_flows_prefect_deploys(monkeypatch: pytest.MonkeyPatch) -> None:
    """`llmops run nightly|retrain|monitor` load the flows by the entrypoints prefect.yaml deploys, from the
    project directory (the package does not import flows/)."""
    from prefect import Flow

    from llmops.cli.pipeline import FLOW_ENTRYPOINTS, _flow

    root = Path(__file__).resolve().parents[2]
    deployed = {d["name"]: d["entrypoint"] for d in yaml.safe_load((root / "prefect.yaml").read_text())["deployments"]}
    assert {name: path.replace(".py:", ":").replace("/", ".") for name, path in deployed.items()} == FLOW_ENTRYPOINTS
    monkeypatch.chdir(root)
    for name in FLOW_ENTRYPOINTS:
        flow = _flow(name)
        assert isinstance(flow, Flow) and flow.name == name and flow.fn.__module__ == f"flows.{name}"


TINY_FLOW = """
import os

from prefect import flow

from llmops.reports.run import RunRecord


@flow(name="nightly")
def nightly(project_dir: str = ".", force: bool = False, overrides: dict[str, str] | None = None) -> RunRecord:
    where = os.path.basename(os.getcwd())
    return RunRecord(flow="nightly", run_id=f"in-{where}", state="completed", started="t", reason=f"{force} {overrides}")
"""


TINY_MONITOR = """
import os

from prefect import flow

from llmops.reports.run import RunRecord


@flow(name="monitor")
def monitor(project_dir: str = ".", overrides: dict[str, str] | None = None) -> RunRecord:
    where = os.path.basename(os.getcwd())
    return RunRecord(flow="monitor", run_id=f"in-{where}", state="completed", started="t", reason=f"{overrides}")
"""


@pytest.mark.parametrize(
    ("name", "code", "args", "reason"),
    [
        (
            "nightly",
            TINY_FLOW,
            ["run", "nightly", "--force", "--set", "finetune.max_steps=3"],
            "True {'finetune.max_steps': '3'}",
        ),
        ("monitor", TINY_MONITOR, ["monitor", "--set", "monitor.min_current_rows=10"], "{'monitor.min_current_rows': '10'}"),
    ],
)
def test_a_flow_command_runs_the_flow_of_the_project_it_is_given(
    settings_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prefect_api: None,
    name: str,
    code: str,
    args: list[str],
    reason: str,
) -> None:
    """`llmops run nightly -C <project>` (and `llmops monitor`) runs <project>/flows/<flow>.py (not a copy in the
    package), with the options it was given (--set: this run's overrides), and prints the run summary the flow
    returns."""
    import os
    import shutil
    import sys

    from llmops.runtime import OFFLINE_ENV, SUPERVISED_ENV

    root = Path(__file__).resolve().parents[2]
    project = tmp_path / "other-project"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "__init__.py").write_text("")
    (project / "flows" / f"{name}.py").write_text(code)
    (project / "dvc.yaml").write_text("stages: {}\n")
    shutil.copy(root / "params.yaml", project / "params.yaml")
    for module in [m for m in sys.modules if m == "flows" or m.startswith("flows.")]:
        monkeypatch.delitem(sys.modules, module)  # restored afterwards: the checkout's flows stay imported
    for key in {*OFFLINE_ENV, "PREFECT_HOME", "PATH"}:  # what the command's set-up writes to os.environ
        monkeypatch.setenv(key, os.environ[key]) if key in os.environ else monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv(SUPERVISED_ENV, "1")  # this process is the supervised child: no second process
    monkeypatch.chdir(tmp_path)  # the command changes into the project; restored afterwards
    result = runner.invoke(app, [*args, "-C", str(project)])
    assert result.exit_code == 0, result.output
    assert f"# {name} run `in-other-project`" in result.output
    assert f"**Reason:** {reason}" in result.output


def test_monitor_rejects_an_unknown_override(settings_env: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    result = runner.invoke(app, ["monitor", "--set", "monitor.min_current_rowz=10", "-C", str(root)])
    assert result.exit_code != 0
    assert "min_current_rowz" in result.output


def test_monitor_set_with_a_subcommand_is_an_error_not_ignored(settings_env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["monitor", "--set", "monitor.drift_share=0.1", "drift", "--help"])
    assert result.exit_code != 0 and "--set is for the monitor flow" in result.output
