"""Erasure through the DAG: a conversation that made it into the training set is removed at the source; after
the next run of the data stages (dvc repro, as the nightly runs them) it is in no output and no cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmops import workspace as ws
from llmops.data.incremental import CACHE_DIR

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # two runs of ingest..trainset on 2 shared cores

OUTPUTS = ("raw", "clean", "redacted", "feedback", "trainset", "quarantine", "redact-quarantine")


def _repro(workspace: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}  # dvc runs `python`
    cmd = [sys.executable, "-m", "dvc", "repro", "trainset"]
    proc = subprocess.run(cmd, cwd=workspace, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _holders(roots: list[Path], needles: list[bytes]) -> list[str]:
    files = [p for r in roots if r.exists() for p in sorted(r.rglob("*")) if p.is_file()]
    return [str(p) for p in files if any(n in p.read_bytes() for n in needles)]


def _customer(line: str) -> str:
    return next(t["text"] for t in json.loads(line)["turns"] if t["role"] == "customer")[:60]


def test_a_conversation_erased_at_the_source_leaves_every_output_and_cache(
    workspace: Path, settings_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh machine: the base model is not converted yet when the first run starts (its training set converts
    # it), and the second run must still reuse every training-set result (one fingerprint across both runs).
    monkeypatch.setenv("LLMOPS_MODEL_CACHE", str(tmp_path / "fresh-models"))
    _repro(workspace)
    rows = [json.loads(x) for x in (workspace / ws.TRAINSET / "provenance.jsonl").read_text().splitlines()]
    trained = [r["group_id"] for r in rows if r["source"] == "conversation"]
    assert trained, "no conversation reached the training set"
    source = workspace / "data/sample/conversations.jsonl"
    lines = source.read_text().splitlines()
    public = (workspace / "data/sample/documents.jsonl").read_bytes()  # knowledge-base text is no one's data
    victim_line = next(
        x
        for gid in trained
        for x in lines
        if f'"conversation_id":"{gid}"' in x.replace(" ", "") and _customer(x).encode() not in public
    )
    needles = [f'"{json.loads(victim_line)["conversation_id"]}"'.encode(), _customer(victim_line).encode()]
    outputs = [workspace / "data" / d for d in OUTPUTS]
    assert _holders(outputs, needles[:1])  # it is there before

    source.write_text("\n".join(x for x in lines if x != victim_line) + "\n")
    _repro(workspace)
    metrics = {
        s: json.loads((workspace / ws.stage_metrics(s)).read_text())["conversations"] for s in ("ingest", "clean", "redact")
    }
    assert all(m["deleted"] >= 1 and m["processed"] == 0 for m in metrics.values()), metrics
    trainset = json.loads((workspace / ws.stage_metrics("trainset")).read_text())["conversations"]
    assert trainset["processed"] == 0 and trainset["deleted"] >= 1 and trainset["reused"] > 0, trainset
    assert _holders([*outputs, settings_env / CACHE_DIR], needles) == []
