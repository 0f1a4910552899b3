"""The run record (llmops.reports.run.RunRecord) through its life: running, failed or crashed, completed (the run
summary), read back by `llmops status` and the supervisor; the JSON keeps the shape it always had."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from llmops import workspace as ws
from llmops.config import Settings
from llmops.errors import DataContractError
from llmops.reports.evaluation import GateDecision
from llmops.reports.run import PublishSlot, RunRecord
from llmops.versioning import StageRun

STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SUMMARY_KEYS = [  # the run summary's keys, as every summary since the first has them
    *("flow", "run_id", "state", "reason", "overrides", "publish", "started", "finished", "data_rev", "stages"),
    *("pushed_files", "skipped", "metrics", "drift", "reports", "model", "gate"),
]


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "metrics").mkdir(parents=True)
    (project / ws.stage_metrics("ingest")).write_text(json.dumps({"conversations": {"in": 5, "out": 4, "quarantined": 1}}))
    (project / ws.EVAL_METRICS).write_text(json.dumps({"retrieval": {"recall@5": 0.75}, "answers": {"token_f1": 0.31}}))
    (project / ws.DRIFT_DIR).mkdir(parents=True)
    (project / ws.DRIFT_DIR / "drift.json").write_text(json.dumps({"drift_detected": True, "drifted_signals": ["intent"]}))
    (project / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    return project


def test_summary_is_written_and_read_through_the_record_in_its_old_shape(settings_env: Path, tmp_path: Path) -> None:
    from llmops.finetune.registry import ModelRecord
    from llmops.runs.summary import summary_markdown, write_run_summary

    project, settings = _project(tmp_path), Settings()
    model = ModelRecord(model_id="adapter-1", base_model="b", backend="local", data_rev="r", reason="nightly", status="rejected")
    gate = GateDecision(False, ["no gain: +0.01 [-0.02, +0.04]"], {"paired_questions": 20})
    summary = write_run_summary(
        project,
        settings,
        flow="nightly",
        run_id="run-1",
        started=STARTED,
        stages=[StageRun("ingest", True, 1.5), StageRun("clean", False, 0.1)],
        pushed=3,
        model=model,
        decision=gate,
        overrides={"finetune.max_steps": 2},
        publish=PublishSlot(limit="llmops-publish", waited_s=0.0, acquired="t0", stages=["ingest"], released="t1"),
    )
    path = settings.path("runs", "20260102T030405-nightly.json")
    body = json.loads(path.read_text())
    assert list(body) == SUMMARY_KEYS
    assert body["stages"] == [{"stage": "ingest", "ran": True, "seconds": 1.5}, {"stage": "clean", "ran": False, "seconds": 0.1}]
    assert body["model"] == {"model_id": "adapter-1", "status": "rejected"} and body["gate"] == gate.as_dict()
    assert body["metrics"]["ingest"]["conversations"]["quarantined"] == 1
    assert body["drift"] == {"drift_detected": True, "drifted_signals": ["intent"]}  # drift.json as it is
    assert list(body["publish"]) == ["limit", "waited_s", "acquired", "stages", "released"]
    assert body["reason"] is None and body["skipped"] is None and body["started"] == STARTED.isoformat()
    assert path.with_suffix(".dvc.lock").read_text() == (project / "dvc.lock").read_text()
    assert RunRecord.read(path) == summary and summary.ran() == ["ingest"]
    text = summary_markdown(summary)
    assert "| ingest | ran | 1.5 |" in text and "| clean | skipped (unchanged) | 0.1 |" in text
    assert "| conversations | 5 | 4 | 1 |" in text and "| answers.token_f1 | 0.31 |" in text
    assert "**Model** `adapter-1`: rejected" in text and "- no gain" in text and "(drifted: intent)" in text
    unchanged = summary.model_copy(
        update={"gate": GateDecision(True, ["adapter-1 is already the champion"], {"not_gated": "already the champion"})}
    )
    assert "**Model** `adapter-1`: not gated again: already the champion" in summary_markdown(unchanged)


def test_a_summary_of_a_run_without_reports(settings_env: Path, tmp_path: Path) -> None:
    from llmops.runs.summary import summary_markdown, write_run_summary

    project = tmp_path / "empty"
    project.mkdir()
    summary = write_run_summary(project, Settings(), flow="monitor", run_id="r", started=STARTED, stages=[], pushed=None)
    body = json.loads(Settings().path("runs", "20260102T030405-monitor.json").read_text())
    assert body["drift"] == {} and body["publish"] == {} and "model" not in body and "gate" not in body
    assert set(body["metrics"]) == set(ws.STAGES) - {"monitor"} and not any(body["metrics"].values())
    assert "Drift detected" not in summary_markdown(summary) and "**Model**" not in summary_markdown(summary)
    no_scores = summary.model_copy(update={"metrics": {**summary.metrics, "evaluate": {"retrieval": {}, "answers": {}}}})
    assert "| metric | value |" not in summary_markdown(no_scores)  # no header over an empty table


def test_a_run_record_from_start_to_crash(settings_env: Path, tmp_path: Path) -> None:
    from llmops.runs.records import mark_crashed, start_record, update_record
    from llmops.runs.status import status

    settings = Settings()
    path = start_record(settings, flow="retrain", run_id="run-2", started=STARTED, overrides={"finetune.max_steps": 1})
    assert json.loads(path.read_text()) == {
        "flow": "retrain",
        "run_id": "run-2",
        "state": "running",
        "stage": None,
        "pid": os.getpid(),
        "started": STARTED.isoformat(),
        "overrides": {"finetune.max_steps": 1},
        "stages": [],
    }
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    update_record(path, stage="finetune", workspace=str(workspace))
    with pytest.raises(DataContractError, match="stage"):
        update_record(path, stage=["not", "a", "stage"])  # a bad field is refused, the record is kept
    assert RunRecord.read(path).stage == "finetune"
    assert mark_crashed(settings, os.getpid() + 1, "stopped by SIGTERM") == []  # another process's runs: untouched
    assert mark_crashed(settings, os.getpid(), "stopped by SIGTERM") == [path]
    record = RunRecord.read(path)
    assert record.state == "crashed" and record.stage == "finetune" and record.error == "stopped by SIGTERM"
    assert not workspace.exists()  # the killed run's workspace (pre-redaction data) is removed
    info = status(tmp_path, settings)
    assert [(r.state, r.stage) for r in info.last_runs] == [("crashed", "finetune")]
    (shown,) = info.as_dict()["last_runs"]  # `llmops status --json`: what a run was and did, not its process
    assert shown["state"] == "crashed" and shown["stage"] == "finetune" and "pid" not in shown and "workspace" not in shown
    from typer.testing import CliRunner

    from llmops.cli import app

    table = CliRunner().invoke(app, ["status", "-C", str(tmp_path)])
    assert table.exit_code == 0 and "retrain" in table.output and "crashed" in table.output, table.output


def test_a_malformed_run_record_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "20260102T030405-nightly.json"
    path.write_text(json.dumps({"flow": "nightly", "run_id": "x", "state": "finished", "started": "t"}))
    with pytest.raises(DataContractError, match=r"20260102T030405-nightly.json is not a valid run record \(state"):
        RunRecord.read(path)
    with pytest.raises(DataContractError, match="does not exist"):
        RunRecord.read(tmp_path / "missing.json")
