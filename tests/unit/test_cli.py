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


def test_run_nightly_runs_the_flow_of_the_project_it_is_given(
    settings_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: None
) -> None:
    """`llmops run nightly -C <project>` runs <project>/flows/nightly.py (not a copy in the package), with the
    options it was given, and prints the run summary the flow returns."""
    import os
    import shutil
    import sys

    from llmops.runtime import OFFLINE_ENV, SUPERVISED_ENV

    root = Path(__file__).resolve().parents[2]
    project = tmp_path / "other-project"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "__init__.py").write_text("")
    (project / "flows" / "nightly.py").write_text(TINY_FLOW)
    (project / "dvc.yaml").write_text("stages: {}\n")
    shutil.copy(root / "params.yaml", project / "params.yaml")
    for name in [m for m in sys.modules if m == "flows" or m.startswith("flows.")]:
        monkeypatch.delitem(sys.modules, name)  # restored afterwards: the checkout's flows stay imported
    for key in {*OFFLINE_ENV, "PREFECT_HOME", "PATH"}:  # what the command's set-up writes to os.environ
        monkeypatch.setenv(key, os.environ[key]) if key in os.environ else monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv(SUPERVISED_ENV, "1")  # this process is the supervised child: no second process
    monkeypatch.chdir(tmp_path)  # the command changes into the project; restored afterwards
    result = runner.invoke(app, ["run", "nightly", "--force", "--set", "finetune.max_steps=3", "-C", str(project)])
    assert result.exit_code == 0, result.output
    assert "# nightly run `in-other-project`" in result.output
    assert "**Reason:** True {'finetune.max_steps': '3'}" in result.output
