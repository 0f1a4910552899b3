"""The nightly flow end to end on tiny real data, under a temporary Prefect API (prefect_test_harness)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from llmops import workspace as ws
from llmops.config import Settings
from llmops.workspace import STAGES


def test_nightly_runs_every_stage_then_skips_them_all(
    workspace: Path, prefect_api: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.nightly import nightly
    from llmops.index.store import chroma_client
    from llmops.index.versions import serving_collection

    state = nightly(project_dir=str(workspace), return_state=True)
    assert state.is_completed(), state
    summary = state.result()
    assert [s["stage"] for s in summary["stages"] if s["ran"]] == STAGES

    lock = yaml.safe_load((workspace / "dvc.lock").read_text())
    assert set(lock["stages"]) == set(STAGES)
    ingest = json.loads((workspace / "metrics/ingest.json").read_text())
    conv = ingest["conversations"]
    assert conv["quarantined"] == 2 and conv["in"] == conv["out"] + conv["quarantined"]
    assert (workspace / ws.QUARANTINE / "conversations.jsonl").read_text().count("\n") == 2

    settings = Settings()
    manifest = (workspace / ws.INDEX_MANIFEST).read_text().splitlines()
    collection = serving_collection(chroma_client(settings), "knowledge-base")
    assert collection.count() == len(manifest) > 0
    docs = {json.loads(line)["doc_id"] for line in (workspace / "data/sample/documents.jsonl").read_text().splitlines()}
    assert {m["doc_id"] for m in collection.get(include=["metadatas"])["metadatas"]} == docs

    metrics = json.loads((workspace / "metrics.json").read_text())
    assert 0.0 <= metrics["retrieval"]["recall@5"] <= 1.0 and metrics["answers"]["answers"] == 2
    assert (workspace / ws.DRIFT_DIR / "report.html").exists()
    assert summary["gate"]["promote"] is True and summary["model"]["status"] == "champion"
    assert summary["pushed_files"] > 0
    assert any((settings.home_dir / "dvc-remote").rglob("*"))
    assert summary["data_rev"] != "none"

    again = nightly(project_dir=str(workspace), return_state=True)
    assert again.is_completed()
    second = again.result()
    assert [s["stage"] for s in second["stages"] if s["ran"]] == []
    assert second["data_rev"] == summary["data_rev"]
    assert "already the champion" in second["gate"]["reasons"][0]

    # A fresh state dir (empty Chroma) over an up-to-date workspace: only the index is rebuilt.
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "other-home"))
    third = nightly(project_dir=str(workspace))
    assert [s["stage"] for s in third["stages"] if s["ran"]] == ["index"]
    assert serving_collection(chroma_client(Settings()), "knowledge-base").count() == len(manifest)
