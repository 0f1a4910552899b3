"""`llmops monitor drift` exit codes and summary on real data, `llmops report` on a history."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from llmops.cli import app
from llmops.data.sources import banking77_conversations
from llmops.jsonl import read_jsonl, write_jsonl
from llmops.records import Conversation

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _summary(output: str) -> dict:
    return json.loads(output[output.index("{") : output.rindex("}") + 1])


def test_drift_cli_exit_codes(tmp_path: Path, shared_data: Path) -> None:
    reference = read_jsonl(ROOT / "data/sample/reference_conversations.jsonl", Conversation)
    write_jsonl(tmp_path / "a.jsonl", reference[::2])
    write_jsonl(tmp_path / "b.jsonl", reference[1::2])
    write_jsonl(tmp_path / "bank.jsonl", list(banking77_conversations(shared_data / "banking77/train.csv"))[::50][:180])
    base = [
        "monitor",
        "drift",
        "--reference",
        str(tmp_path / "a.jsonl"),
        "--no-text-content",
        "--params",
        str(ROOT / "params.yaml"),
    ]

    same = runner.invoke(app, [*base, "--current", str(tmp_path / "b.jsonl"), "--out", str(tmp_path / "same"), "--fail-on-drift"])
    assert same.exit_code == 0, same.output
    assert _summary(same.output)["drift_detected"] is False

    shifted = runner.invoke(app, [*base, "--current", str(tmp_path / "bank.jsonl"), "--out", str(tmp_path / "bank")])
    assert shifted.exit_code == 0, shifted.output  # drift is reported, not an error, without --fail-on-drift
    summary = _summary(shifted.output)
    assert summary["drift_detected"] is True and {"channel", "intent"} <= set(summary["drifted_signals"])
    assert json.loads((tmp_path / "bank/drift.json").read_text())["drift_detected"] is True
    assert (tmp_path / "bank/report.html").exists()

    failing = runner.invoke(
        app, [*base, "--current", str(tmp_path / "bank.jsonl"), "--out", str(tmp_path / "bank2"), "--fail-on-drift"]
    )
    assert failing.exit_code == 3
    assert "drift detected in channel" in failing.output


def test_drift_cli_bad_input_is_actionable(tmp_path: Path) -> None:
    missing = runner.invoke(
        app, ["monitor", "drift", "--reference", str(tmp_path / "nope.jsonl"), "--current", "x", "--out", str(tmp_path)]
    )
    assert missing.exit_code == 1 and "no such file" in missing.output
    (tmp_path / "bad.jsonl").write_text('{"conversation_id": "c1"}\n')
    bad = runner.invoke(
        app, ["monitor", "drift", "--reference", str(tmp_path / "bad.jsonl"), "--current", "x", "--out", str(tmp_path)]
    )
    assert bad.exit_code == 1 and "bad.jsonl:1 is not a valid Conversation" in bad.output
    (tmp_path / "empty.jsonl").write_text("\n")
    empty = runner.invoke(
        app,
        ["monitor", "drift", "--reference", str(tmp_path / "empty.jsonl"), "--current", str(tmp_path / "empty.jsonl"),
         "--out", str(tmp_path / "o")],
    )  # fmt: skip
    assert empty.exit_code == 1 and "reference window has no conversations" in empty.output


def test_report_renders_the_history(settings_env: Path, tmp_path: Path) -> None:
    from llmops.config import MonitorParams
    from llmops.monitoring.history import History
    from llmops.monitoring.monitor import observe_run
    from llmops.reports.drift import DriftReport

    history = History(str(settings_env / "history"))
    observe_run(history, MonitorParams(), flow="nightly", run_id="r1", drift=DriftReport(drift_share=0.1),
                evaluation={"answers": {"token_f1": 0.3}})  # fmt: skip
    result = runner.invoke(app, ["report", "--out", str(tmp_path / "trend.html")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["runs"] == 1
    assert "answers.token_f1=0.3000" in (tmp_path / "trend.html").read_text()
