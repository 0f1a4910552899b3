"""Retrain triggers: enough new examples since the champion's data, changed recipe, force; one retrain at a time."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from llmops.config import RetrainParams
from llmops.errors import RunLocked
from llmops.finetune.registry import ModelRecord
from llmops.finetune.triggers import count_new_examples, data_until, run_lock, should_retrain


def _provenance(path: Path, stamps: list[tuple[str, str]]) -> Path:
    path.write_text(
        "".join(
            json.dumps({"split": s, "source": "conversation", "group_id": str(i), "created_at": t}) + "\n"
            for i, (s, t) in enumerate(stamps)
        )
    )
    return path


def _champion(data_until_ts: str | None) -> ModelRecord:
    return ModelRecord(
        model_id="champ",
        base_model="b",
        data_rev="r",
        params_hash="h1",
        training={"data_until": data_until_ts},
        created_at=datetime(2026, 6, 1, tzinfo=UTC),
    )


def test_new_examples_are_counted_after_the_champions_data(tmp_path: Path) -> None:
    prov = _provenance(
        tmp_path / "p.jsonl",
        [("train", "2026-01-01T00:00:00Z")] * 5
        + [("train", "2026-03-01T00:00:00+00:00")] * 3
        + [("validation", "2026-03-02T00:00:00Z")],
    )
    assert data_until(prov) == "2026-03-02T00:00:00+00:00"
    assert count_new_examples(prov, datetime(2026, 2, 1, tzinfo=UTC)) == 3  # validation rows do not count
    assert count_new_examples(prov, None) == 8
    cfg = RetrainParams(min_new_examples=3)
    assert should_retrain(prov, None, "h1", cfg).reason == "no champion yet"
    ok = should_retrain(prov, _champion("2026-02-01T00:00:00+00:00"), "h1", cfg)
    assert ok.run and ok.new_examples == 3
    few = should_retrain(prov, _champion("2026-02-01T00:00:00+00:00"), "h1", RetrainParams(min_new_examples=4))
    assert not few.run and "only 3 new training examples" in few.reason and "--force" in few.reason
    assert should_retrain(prov, _champion("2026-02-01T00:00:00+00:00"), "h2", RetrainParams(min_new_examples=4)).run
    assert should_retrain(prov, _champion("2026-02-01T00:00:00+00:00"), "h1", RetrainParams(min_new_examples=4), force=True).run
    # no data_until recorded: the champion's creation time is the cut-off
    assert should_retrain(prov, _champion(None), "h1", cfg).new_examples == 0


def test_one_retrain_at_a_time(tmp_path: Path) -> None:
    lock = tmp_path / "locks/retrain.lock"
    with run_lock(lock):
        assert json.loads(lock.read_text())["pid"] > 0
        with pytest.raises(RunLocked, match="another retrain is running"), run_lock(lock):
            pass
    assert not lock.exists()
    # a lock left behind by a process that died is taken over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(json.dumps({"pid": int(dead.stdout), "since": "earlier"}))
    with run_lock(lock):
        assert json.loads(lock.read_text())["since"] != "earlier"
