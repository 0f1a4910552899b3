"""Retrain policy: enough new examples since the champion's data, changed recipe, force; one retrain at a time."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from llmops.config import RetrainParams
from llmops.errors import RunLocked
from llmops.finetune.policy import (
    count_new_examples,
    data_until,
    load_training_ids,
    recipe_reference,
    run_lock,
    save_training_ids,
    should_retrain,
)
from llmops.finetune.registry import ModelRecord, Registry


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


def test_while_the_base_model_is_champion_the_rejected_adapter_is_the_reference(tmp_path: Path) -> None:
    """The base model won the gate: retraining on the same data with the rejected adapter's recipe is skipped;
    new data or a new recipe trains."""
    prov = _provenance(tmp_path / "p.jsonl", [("train", "2026-01-01T00:00:00Z")] * 5)
    base = ModelRecord(model_id="base", base_model="b", backend="base", data_rev="r", params_hash="-", status="champion")
    rejected = _champion("2026-01-01T00:00:00+00:00").model_copy(update={"model_id": "lora-1", "status": "rejected"})
    older = rejected.model_copy(update={"model_id": "lora-0", "created_at": datetime(2026, 5, 1, tzinfo=UTC)})
    cfg = RetrainParams(min_new_examples=3)
    assert recipe_reference([base], base) is None
    assert should_retrain(prov, base, "h1", cfg).run  # nothing trained yet: train
    reference = recipe_reference([base, older, rejected], base)
    assert reference is not None and reference.model_id == "lora-1"  # the newest trained model
    same = should_retrain(prov, reference, "h1", cfg)
    assert not same.run and "0 new training examples" in same.reason and "rejected lora-1" in same.reason
    assert should_retrain(prov, reference, "h2", cfg).run  # a new recipe
    champion = rejected.model_copy(update={"status": "champion"})
    assert recipe_reference([base, champion], champion) is champion


def _provenance_ids(path: Path, ids: list[str], created_at: str = "2026-12-28T00:00:00Z") -> Path:
    rows = [{"split": "train", "source": "conversation", "group_id": i, "created_at": created_at, "example_id": i} for i in ids]
    rows.append({"split": "validation", "source": "conversation", "group_id": "v", "created_at": created_at, "example_id": "v"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_new_examples_are_counted_by_arrival_not_by_their_timestamps(tmp_path: Path) -> None:
    """The reference model's training ids are kept in the registry; examples it did not train on are new,
    whatever their created_at (the sample's records are stamped after any served feedback)."""
    registry = Registry(tmp_path / "registry")
    model = _champion("2026-12-28T00:00:00+00:00")  # data_until: the newest (future) record
    trained = _provenance_ids(tmp_path / "trained.jsonl", [f"a{i}" for i in range(30)])
    assert save_training_ids(registry, "champ", trained) == 30
    assert save_training_ids(registry, "champ", trained) == -1  # kept once: a model's data does not change
    ids = load_training_ids(registry, model)
    assert ids is not None and len(ids) == 30 and "v" not in ids  # the training split only
    cfg = RetrainParams(min_new_examples=5)
    # 3 new examples, stamped in the past (served feedback arriving today with an older ts): few -> skipped
    few = _provenance_ids(tmp_path / "few.jsonl", [f"a{i}" for i in range(28)] + ["n1", "n2", "n3"], "2026-01-01T00:00:00Z")
    skip = should_retrain(few, model, "h1", cfg, trained_ids=ids)
    assert not skip.run and skip.new_examples == 3 and "only 3 new training examples" in skip.reason
    assert should_retrain(few, model, "h1", cfg).new_examples == 0  # by timestamp they were not new at all
    # 6 new: retrain, with the reason
    many = _provenance_ids(
        tmp_path / "many.jsonl", [f"a{i}" for i in range(30)] + [f"n{i}" for i in range(6)], "2026-01-01T00:00:00Z"
    )
    go = should_retrain(many, model, "h1", cfg, trained_ids=ids)
    assert (
        go.run
        and go.new_examples == 6
        and "6 new training examples (not in the training data of latest trained model, challenger champ)" in go.reason
    )
    # a model registered before ids were kept: the timestamp rule
    assert load_training_ids(registry, model.model_copy(update={"model_id": "older"})) is None


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


def test_a_registered_model_keeps_its_training_ids_and_the_policy_counts_by_them(settings_env: Path, tmp_path: Path) -> None:
    """Through the promotion path: registering the evaluated adapter keeps its training ids; the next
    retrain check counts only examples not among them, though every example is stamped in the future."""
    from llmops import workspace as ws
    from llmops.config import Params, Settings
    from llmops.runs.promotion import record_model, retrain_check
    from tests.unit.test_registry import BASE, _base_champion, _project

    project = _project(tmp_path, "good", {q: v + 0.1 for q, v in BASE.items()})
    params, settings = Params(), Settings()
    registry = Registry.from_settings(settings)
    _base_champion(registry, project, params, BASE)
    (project / ws.TRAINSET).mkdir(parents=True)
    provenance = _provenance_ids(project / ws.TRAINSET / "provenance.jsonl", [f"old{i}" for i in range(40)])
    model, decision = record_model(project, settings, params, reason="nightly")
    assert decision.promote and model.status == "champion"
    assert load_training_ids(registry, model) == {f"old{i}" for i in range(40)}
    same = retrain_check(project, settings, params)
    assert not same.run and same.new_examples == 0
    _provenance_ids(provenance, [f"old{i}" for i in range(40)] + [f"new{i}" for i in range(25)], "2026-01-01T00:00:00Z")
    grown = retrain_check(project, settings, params)
    assert grown.run and grown.new_examples == 25 and "not in the training data of champion good" in grown.reason
