"""`llmops run nightly` as a user runs it (a separate process, the real ephemeral Prefect API), on the
full shipped sample; then `llmops retrain` with an override (that run's only) and `llmops status`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_workspace

pytestmark = pytest.mark.slow


def _llmops(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmops", *args], cwd=cwd, env=os.environ.copy(), capture_output=True, text=True, timeout=1500
    )


def test_full_sample_nightly_then_retrain(tmp_path: Path, settings_env: Path) -> None:
    from llmops.config import apply_overrides

    ws = make_workspace(tmp_path / "ws", tiny=False)
    apply_overrides(ws / "params.yaml", {"evaluate.max_new_tokens": 16})  # the whole gate set, short answers: quick
    run = _llmops("run", "nightly", cwd=ws)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Finished in state Completed" in run.stdout + run.stderr
    metrics = json.loads((ws / "metrics.json").read_text())
    assert metrics["retrieval"]["queries"] == 120 and metrics["retrieval"]["recall@5"] > 0.5
    # The base model is an evaluated record; the first adapter was gated against it on the whole gate set.
    models = {m["model_id"]: m for m in json.loads(_llmops("models", "list", "--json", cwd=ws).stdout)}
    base = models["SmolLM2-135M-Instruct"]
    assert base["backend"] == "base" and base["scored_questions"] == 120 and base["evaluation"]["answers"]["answers"] == 120
    (adapter,) = [m for m in models.values() if m["backend"] == "local"]
    gate = adapter["gate"]
    assert gate["paired_questions"] >= 100 and len(gate["ci"]) == 2 and gate["decision"] in {"promote", "reject", "no change"}
    assert gate["champion_id"] == "SmolLM2-135M-Instruct" and gate["mde"] > 0

    params = (ws / "params.yaml").read_bytes()
    bad = _llmops("retrain", "--reason", "typo", "--set", "finetune.max_stepz=3", cwd=ws)
    assert bad.returncode != 0 and "max_stepz" in bad.stderr and "nothing was run" in bad.stderr
    retrain = _llmops("retrain", "--reason", "e2e check", "--set", "finetune.max_steps=3", cwd=ws)
    assert retrain.returncode == 0, retrain.stdout[-3000:] + retrain.stderr[-3000:]
    assert (ws / "params.yaml").read_bytes() == params  # the override was the run's only

    status = _llmops("status", "--json", cwd=ws)
    info = json.loads(status.stdout)
    assert [r["flow"] for r in info["last_runs"]] == ["retrain", "nightly"]
    assert info["last_runs"][0]["reason"] == "e2e check" and info["last_runs"][0]["overrides"] == {"finetune.max_steps": 3}
    assert [r["state"] for r in info["last_runs"]] == ["completed", "completed"]
    assert info["champion"] is not None
