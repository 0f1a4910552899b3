"""The model registry as a versioned file in the object store (local dir and S3), and `llmops models`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli import app
from llmops.errors import RegistryError, StorageError
from llmops.finetune.registry import ModelRecord, Registry
from llmops.storage import store_for


def _record(model_id: str, f1: float) -> ModelRecord:
    return ModelRecord(
        model_id=model_id,
        base_model="SmolLM2-135M-Instruct",
        data_rev="abc123",
        params_hash="p" * 12,
        training={"steps": 2, "train_loss": [1.0, 0.9], "val_loss_after": 0.8},
        evaluation={"answers": {"token_f1": f1}},
        reason="test",
    )


def _artifact(tmp_path: Path, name: str) -> Path:
    d = tmp_path / name
    (d / "sub").mkdir(parents=True)
    (d / "adapter_model.safetensors").write_bytes(name.encode() * 10)
    (d / "sub" / "training.json").write_text("{}")
    return d


def _lifecycle(reg: Registry, tmp_path: Path) -> None:
    assert reg.champion() is None and reg.models() == []
    for i, mid in enumerate(["m1", "m2"]):
        reg.register(_record(mid, 0.3 + i / 10), _artifact(tmp_path, mid))
        reg.set_status(mid, "champion", ["gate says yes"])
    assert reg.champion().model_id == "m2" and reg.get("m1").status == "retired"
    back = reg.rollback(reason="m2 answers in French")
    assert back.model_id == "m1" and reg.champion().model_id == "m1"
    assert reg.get("m2").status == "rejected" and "French" in reg.get("m2").events[-1]["reason"]
    with pytest.raises(RegistryError, match="no previous champion"):
        reg.rollback(reason="again")
    reg.promote("m2", reason="fixed by hand")
    assert reg.champion().model_id == "m2" and reg.get("m2").events[-1]["reason"].startswith("manual promotion")
    with pytest.raises(RegistryError, match=r"no model 'nope'.*known: m1, m2"):
        reg.promote("nope", reason="x")
    # every write is kept as a version
    versions = reg.history()
    assert len(versions) == reg.load().version >= 6
    assert json.loads(reg._store.read_bytes(versions[0]))["version"] == 1
    out = reg.fetch_artifact("m1", tmp_path / "fetched")
    assert (out / "adapter_model.safetensors").read_bytes() == b"m1" * 10 and (out / "sub/training.json").exists()
    assert not (out / ".complete").exists()


def test_local_registry_lifecycle_and_versions(tmp_path: Path) -> None:
    _lifecycle(Registry(tmp_path / "registry"), tmp_path)


def test_concurrent_write_is_detected_not_lost(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry")
    reg.register(_record("m1", 0.3), None)
    state = reg.load()
    reg.register(_record("m2", 0.4), None)  # someone else writes in between
    with pytest.raises(StorageError, match="changed while this run"):
        reg._save(state, state.version)
    assert {m.model_id for m in reg.models()} == {"m1", "m2"}


def test_s3_registry_lifecycle(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    for k, v in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket="models")
    reg = Registry("s3://models/registry", store_for("s3://models", endpoint_url=s3_endpoint, region="us-east-1"))
    _lifecycle(reg, tmp_path)
    assert reg.get("m1").artifact_path == "s3://models/registry/models/m1"
    assert "s3://models/registry/history/registry-000001.json" in reg.history()


def test_cli_models_list_promote_rollback(settings_env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    assert "no models registered" in runner.invoke(app, ["models", "list"]).output
    reg = Registry(settings_env / "registry")
    reg.register(_record("m1", 0.3), _artifact(tmp_path, "m1"))
    reg.set_status("m1", "champion", ["first"])
    reg.register(_record("m2", 0.5), _artifact(tmp_path, "m2"))
    reg.set_status("m2", "rejected", ["worse"])
    res = runner.invoke(app, ["models", "list", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [r["model_id"] for r in rows] == ["m1", "m2"]
    for key in ("base_model", "backend", "data_rev", "params_hash", "created_at", "reason", "training", "evaluation"):
        assert key in rows[0]
    assert "train_loss" not in rows[0]["training"] and rows[0]["evaluation"]["answers"]["token_f1"] == 0.3
    res = runner.invoke(app, ["models", "promote", "m2", "--reason", "reviewed by hand"])
    assert res.exit_code == 0 and "m2 is now champion" in res.output
    assert "champion" in runner.invoke(app, ["models", "list"]).output
    res = runner.invoke(app, ["models", "rollback", "--reason", "bad answers"])
    assert res.exit_code == 0 and "m1 is champion again" in res.output
    res = runner.invoke(app, ["models", "promote", "ghost", "--reason", "x"])
    assert res.exit_code == 1 and "no model 'ghost'" in res.output


def _project(tmp_path: Path, model_id: str, scores: dict[str, float]) -> Path:
    """A workspace after the evaluate stage: adapter, metrics.json, per-question samples, gate set, index manifest."""
    from llmops import workspace as ws

    project = tmp_path / f"project-{model_id}"
    (project / ws.ADAPTER).mkdir(parents=True)
    (project / ws.ADAPTER / "adapter_model.safetensors").write_bytes(model_id.encode() * 10)
    (project / ws.ADAPTER / "training.json").write_text(json.dumps({"model_id": model_id, "base_model": "SmolLM2-135M-Instruct"}))
    mean = sum(scores.values()) / len(scores)
    (project / ws.EVAL_METRICS).write_text(json.dumps({"answers": {"token_f1": mean}, "retrieval": {"recall@5": 0.8}}))
    (project / ws.EVAL_SAMPLES).parent.mkdir(parents=True)
    rows = [{"id": q, "answer": "a", "reference": "r", "answers.token_f1": v} for q, v in scores.items()]
    (project / ws.EVAL_SAMPLES).write_text("".join(json.dumps(r) + "\n" for r in rows))
    (project / "data/gateset").mkdir(parents=True)
    (project / "data/gateset/questions.jsonl").write_text("".join(json.dumps({"id": q}) + "\n" for q in scores))
    (project / ws.INDEX_MANIFEST).parent.mkdir(parents=True)
    (project / ws.INDEX_MANIFEST).write_text('{"chunk_id": "c1"}\n')
    return project


def _base_champion(reg: Registry, project: Path, params: object, scores: dict[str, float]) -> ModelRecord:
    """The base model's record as the first nightly run registers it (evaluated on the same gate set and index)."""
    from llmops.evaluation.baseline import BASE_BACKEND, evaluation_key

    mean = sum(scores.values()) / len(scores)
    record = ModelRecord(
        model_id="SmolLM2-135M-Instruct",
        base_model="SmolLM2-135M-Instruct",
        backend=BASE_BACKEND,
        data_rev="abc",
        reason="base model",
        evaluation={"answers": {"token_f1": mean}, "retrieval": {"recall@5": 0.8}},
        eval_scores={q: [v] for q, v in scores.items()},
        eval_key=evaluation_key(project, params),  # type: ignore[arg-type]
    )
    reg.register(record, None)
    return reg.set_status(record.model_id, "champion", ["base model"])


BASE = {f"q{i}": 0.1 + (i % 7) / 20 for i in range(120)}


def test_first_adapter_must_beat_the_base_and_rollback_returns_to_it(settings_env: Path, tmp_path: Path) -> None:
    from llmops.config import Params, Settings
    from llmops.runs.promotion import record_model

    params, settings = Params(), Settings()
    reg = Registry.from_settings(settings)
    same = _project(tmp_path, "same", BASE)  # an adapter answering exactly like the base
    _base_champion(reg, same, params, BASE)

    model, decision = record_model(same, settings, params, reason="nightly")
    assert not decision.promote and model.status == "rejected" and decision.evidence["decision"] == "no change"
    assert reg.champion().model_id == "SmolLM2-135M-Instruct"
    assert decision.evidence["champion_id"] == "SmolLM2-135M-Instruct" and decision.evidence["ties"] == 120

    better = _project(tmp_path, "better", {q: v + 0.05 * (int(q[1:]) % 3) for q, v in BASE.items()})
    model, decision = record_model(better, settings, params, reason="nightly")
    assert decision.promote and model.status == "champion", decision.reasons
    ev = decision.evidence
    assert ev["paired_questions"] == 120 and ev["ci"][0] > 0 and ev["decision"] == "promote"

    rows = json.loads(CliRunner().invoke(app, ["models", "list", "--json"]).output)
    base_row = next(r for r in rows if r["model_id"] == "SmolLM2-135M-Instruct")
    assert base_row["backend"] == "base" and base_row["scored_questions"] == 120 and base_row["evaluation"]["answers"]
    better_row = next(r for r in rows if r["model_id"] == "better")
    assert better_row["gate"]["paired_questions"] >= 100 and better_row["gate"]["decision"] == "promote"
    assert len(better_row["gate"]["ci"]) == 2

    back = reg.rollback(reason="customers preferred the base")
    assert back.model_id == "SmolLM2-135M-Instruct" and reg.champion().backend == "base"


def test_approval_holds_a_passing_model_until_a_person_decides(settings_env: Path, tmp_path: Path) -> None:
    from llmops.config import GateParams, Params, Settings
    from llmops.runs.promotion import record_model

    params, settings = Params(gate=GateParams(require_approval=True)), Settings()
    reg = Registry.from_settings(settings)
    up = {q: v + 0.1 for q, v in BASE.items()}
    first = _project(tmp_path, "first", up)
    _base_champion(reg, first, params, BASE)
    model, decision = record_model(first, settings, params, reason="nightly")
    assert decision.promote and model.status == "pending" and reg.champion().model_id == "SmolLM2-135M-Instruct"
    assert "waiting for approval" in decision.reasons[-1]

    runner = CliRunner()
    res = runner.invoke(app, ["models", "approve", "first", "--reason", "read the gate report"])
    assert res.exit_code == 0 and "first is now champion" in res.output, res.output
    assert reg.champion().model_id == "first" and "approved: read the gate report" in reg.get("first").events[-1]["reason"]
    res = runner.invoke(app, ["models", "reject", "first"])
    assert res.exit_code == 1 and "not pending approval" in res.output

    second = _project(tmp_path, "second", {q: v + 0.2 for q, v in BASE.items()})
    model, _ = record_model(second, settings, params, reason="nightly")
    assert model.status == "pending"
    res = runner.invoke(app, ["models", "reject", "second", "--reason", "tone is off"])
    assert res.exit_code == 0 and reg.get("second").status == "rejected" and reg.champion().model_id == "first"

    # A pending model gated against an earlier champion is never approved over a newer one.
    third = _project(tmp_path, "third", {q: v + 0.3 for q, v in BASE.items()})
    model, _ = record_model(third, settings, params, reason="nightly")
    assert model.status == "pending" and model.gate_evidence["champion_id"] == "first"
    reg.promote("SmolLM2-135M-Instruct", reason="back to the base by hand")
    res = runner.invoke(app, ["models", "approve", "third"])
    assert res.exit_code == 1 and "never compared with the current champion" in res.output, res.output
    assert reg.get("third").status == "pending" and reg.champion().model_id == "SmolLM2-135M-Instruct"


def test_evaluation_key_changes_with_the_index_and_the_gate_set(tmp_path: Path) -> None:
    from llmops import workspace as ws
    from llmops.config import Params
    from llmops.evaluation.baseline import evaluation_key

    project, params = _project(tmp_path, "m", BASE), Params()
    key = evaluation_key(project, params)
    assert key == evaluation_key(project, params)
    (project / ws.INDEX_MANIFEST).write_text('{"chunk_id": "c2"}\n')  # a new index version: stored scores are stale
    assert evaluation_key(project, params) != key
    key = evaluation_key(project, params)
    longer = params.evaluate.model_copy(update={"max_new_tokens": 9})
    assert evaluation_key(project, params.model_copy(update={"evaluate": longer})) != key


def test_gate_never_re_judges_a_model_a_person_overruled(settings_env: Path, tmp_path: Path) -> None:
    """Nightly runs re-offer the workspace's unchanged adapter; once judged, only `models promote` changes it."""
    from llmops.config import Params, Settings
    from llmops.runs.promotion import record_model

    project = _project(tmp_path, "good", {q: v + 0.1 for q, v in BASE.items()})
    params, settings = Params(), Settings()
    reg = Registry.from_settings(settings)
    _base_champion(reg, project, params, BASE)

    first, decision = record_model(project, settings, params, reason="nightly")
    assert decision.promote and first.status == "champion"
    reg.register(_record("hand-picked", 0.1), _artifact(tmp_path, "hand-picked"))
    reg.promote("hand-picked", reason="legal asked for it")  # worse on the metric, chosen by a person

    again, decision = record_model(project, settings, params, reason="nightly")
    assert not decision.promote and "already judged (retired)" in decision.reasons[0]
    assert again.model_id == "good" and reg.champion().model_id == "hand-picked"
