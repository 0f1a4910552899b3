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
