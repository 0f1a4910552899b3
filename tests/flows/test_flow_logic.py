"""Flow logic with the stage runs stubbed, under a temporary Prefect API: which stages each flow runs and with
what force, the retrain policy's skip, gate -> approval -> promotion, a failing stage, and the monitor's
retrain trigger.

Only the execution of a DVC stage is replaced (``versioning.repro_stage``, what the flows' stage task calls):
the stand-in writes the stage's declared outputs (the files the flows read, with contents each test picks)
and records them with ``dvc commit``, so pull, push, publishing, the registry, the gate, the history and the
run records are the real ones. The real stages run in the one end-to-end nightly (test_nightly_flow.py)
and in the slow end-to-end tests; DVC's own skip decision is tested in test_isolation.py.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from llmops import versioning
from llmops import workspace as ws
from llmops.config import Params, Settings, apply_overrides, load_params
from llmops.errors import StageError
from llmops.evaluation.baseline import base_model_id, evaluation_key
from llmops.finetune.registry import ModelRecord, Registry
from llmops.reports.drift import DriftReport
from llmops.reports.evaluation import EvaluationReport, SampleRow, write_samples
from llmops.reports.run import RunRecord
from llmops.reports.training import TrainingReport
from llmops.versioning import StageRun
from llmops.workspace import BEFORE_TRAINING, MONITORING, STAGES, TRAINING

QUESTIONS = 20  # (write_eval_inputs) paired gate questions the stand-in evaluates (the tiny workspace's gate needs 2)
BASE_F1 = [0.2 + 0.01 * (i % 7) for i in range(QUESTIONS)]  # the base model's per-question token F1


@dataclass
class Stages:
    """Stands in for :func:`llmops.versioning.repro_stage`. A stage "runs" when forced or listed in ``changed``
    (else DVC would have skipped it); running writes its outputs and commits them to the DVC cache and lock."""

    changed: set[str] = field(default_factory=lambda: set(STAGES))
    fail: str | None = None  # this stage's command fails
    gain: float = 0.3  # the trained adapter's per-question token F1 over the base model's
    drift: bool = False  # the monitor stage finds drift
    created_at: str = "2026-01-10T00:00:00+00:00"  # the training examples' creation time (the same ones every run)
    calls: list[tuple[str, bool]] = field(default_factory=list)
    trained: int = 0

    def __call__(self, project_dir: Path, stage: str, *, force: bool = False) -> StageRun:
        self.calls.append((stage, force))
        if stage == self.fail:
            raise StageError(stage, f"the command exited with 1. See the stage output above; rerun with `dvc repro {stage}`")
        ran = force or stage in self.changed
        if ran:
            self.write(project_dir, stage)
            from dvc.repo import Repo

            with Repo(str(project_dir)) as repo, contextlib.chdir(project_dir):  # stage names resolve in the cwd
                repo.commit(stage, force=True)
        return StageRun(stage=stage, ran=ran, seconds=0.0)

    def ran(self, flow_calls: list[tuple[str, bool]] | None = None) -> list[str]:
        return [stage for stage, _ in (self.calls if flow_calls is None else flow_calls)]

    def write(self, project: Path, stage: str) -> None:
        params = load_params(project / "params.yaml")
        spec = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
        deps = {_resolve(d, params) for s in spec.values() for d in s.get("deps") or []}
        for out in _paths(spec[stage], ("outs", "metrics", "plots"), params):
            # As DVC does before a stage runs: outputs may be links into the shared cache, never written through.
            if (project / out).is_dir():
                shutil.rmtree(project / out)
            (project / out).unlink(missing_ok=True)
            _placeholder(project / out)
            for dep in deps:  # what later stages read from inside this output
                if dep.startswith(out.rstrip("/") + "/"):
                    _placeholder(project / dep)
        if stage in {"index", "gateset"}:
            write_eval_inputs(project, params)
        elif stage == "trainset":
            row = {"source": "conversation", "split": "train", "created_at": self.created_at}
            rows = [row | {"example_id": f"e{i}", "group_id": f"g{i}"} for i in range(5)]
            _jsonl(project / ws.TRAINSET / "provenance.jsonl", rows)
        elif stage == "finetune":
            self.trained += 1
            TrainingReport(model_id=f"adapter-{self.trained}", base_model=base_model_id(params), backend="local").write(
                project / ws.ADAPTER
            )
        elif stage == "evaluate":
            scores = [s + self.gain for s in BASE_F1]
            evaluation = {"answers": {"token_f1": sum(scores) / QUESTIONS}, "retrieval": {"recall@5": 0.8}}
            EvaluationReport.model_validate(evaluation).write(project / ws.EVAL_METRICS)
            rows = [{"id": f"q{i}", "answer": "a", "answers.token_f1": s} for i, s in enumerate(scores)]
            write_samples(project / ws.EVAL_SAMPLES, [SampleRow.model_validate(r) for r in rows])
        elif stage == "monitor":
            signals = ["intent"] if self.drift else []
            drift = DriftReport(drift_detected=self.drift, drift_share=float(self.drift), drifted_signals=signals)
            drift.write(project / ws.DRIFT_DIR)


def _resolve(path: str, params: Params) -> str:
    """A dvc.yaml path with its ``${section.key}`` interpolations taken from params."""

    def value(m: re.Match[str]) -> str:
        obj: object = params
        for part in m[1].split("."):
            obj = getattr(obj, part)
        return str(obj)

    return re.sub(r"\$\{([\w.]+)\}", value, path)


def _paths(stage: dict, keys: tuple[str, ...], params: Params) -> list[str]:
    items = [item for key in keys for item in stage.get(key) or []]
    return [_resolve(str(next(iter(i)) if isinstance(i, dict) else i), params) for i in items]


def _placeholder(path: Path) -> None:
    """A file (the path has a suffix) or a directory with one file in it."""
    if path.suffix:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}\n" if path.suffix in {".json", ".jsonl"} else "stub\n", encoding="utf-8")
    else:
        path.mkdir(parents=True, exist_ok=True)
        (path / "part.jsonl").write_text("{}\n", encoding="utf-8")


def write_eval_inputs(project: Path, params: Params) -> None:
    """The gate set and index manifest (what a stored score's evaluation key depends on)."""
    questions = [{"id": f"q{i}", "query": f"question {i}?", "gold_doc_ids": ["d0"], "answer": "an answer"} for i in range(20)]
    _jsonl(project / params.evaluate.gate_questions, questions)
    _jsonl(project / ws.INDEX_MANIFEST, [{"chunk_id": "d0-0", "doc_id": "d0"}])


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture()
def stages(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stages]:
    from prefect.settings import PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW, temporary_settings

    stub = Stages()
    monkeypatch.setattr(versioning, "repro_stage", stub)
    # A flow body called with .fn() has no flow run: its tasks' logs stay local instead of warning.
    with temporary_settings({PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW: "ignore"}):
        yield stub


def base_champion(project: Path, tmp_path: Path) -> ModelRecord:
    """The base model registered as champion, scored under the evaluation key the stand-in's outputs give (so
    the gate compares with it and does not generate its answers)."""
    params = load_params(project / "params.yaml")
    scratch = tmp_path / "eval-key"
    write_eval_inputs(scratch, params)
    registry = Registry.from_settings(Settings())
    record = ModelRecord(
        model_id=base_model_id(params),
        base_model=base_model_id(params),
        backend="base",
        data_rev="r0",
        evaluation={"answers": {"token_f1": sum(BASE_F1) / QUESTIONS}, "retrieval": {"recall@5": 0.8}},
        eval_scores={f"q{i}": [s] for i, s in enumerate(BASE_F1)},
        eval_key=evaluation_key(scratch, params),
    )
    registry.register(record, None)
    return registry.set_status(record.model_id, "champion", ["base model"])


def test_nightly_trains_promotes_then_leaves_training_to_the_retrain_policy(
    workspace: Path, prefect_api: None, stages: Stages, tmp_path: Path
) -> None:
    from flows.nightly import nightly
    from flows.retrain import retrain

    base = base_champion(workspace, tmp_path)
    first = nightly.fn(project_dir=str(workspace))
    assert stages.calls == [(s, False) for s in STAGES]  # one task per stage, in dvc.yaml's order, none forced
    assert first.ran() == STAGES and first.skipped is None
    assert first.model is not None and first.gate is not None and first.gate.promote
    assert (first.model.model_id, first.model.status) == ("adapter-1", "champion")
    assert first.gate.evidence["paired_questions"] == QUESTIONS and first.gate.evidence["champion_id"] == base.model_id
    registry = Registry.from_settings(Settings())
    assert registry.champion().model_id == "adapter-1" and registry.get(base.model_id).status == "retired"
    # Published: the run's dvc.lock entries and outputs are the project's now; the run workspace is gone.
    assert set(yaml.safe_load((workspace / "dvc.lock").read_text())["stages"]) == set(STAGES)
    assert json.loads((workspace / ws.ADAPTER / "training.json").read_text())["model_id"] == "adapter-1"
    assert first.publish is not None and first.publish.stages == STAGES
    assert not any(Settings().path("workspaces").iterdir()) and first.pushed_files and first.data_rev != "none"

    # Next night, nothing changed for DVC, but new lines in the generation log (outside the workspace: DVC
    # cannot see them) force the feedback stage, and the index is not in this Chroma (the stand-in indexes
    # nothing) so it is forced too. The same examples as the champion's: the policy skips training.
    stages.calls.clear()
    stages.changed = set()
    log = Settings().path("generation-log", "generations", "date=2026-05-01")
    log.mkdir(parents=True)
    (log / "part-0.jsonl").write_text('{"generation_id": "g1"}\n', encoding="utf-8")
    second = nightly.fn(project_dir=str(workspace))
    assert stages.calls == [(s, s in {"feedback", "index"}) for s in STAGES if s not in TRAINING]
    assert second.ran() == ["feedback", "index"]
    assert second.skipped is not None and second.skipped.startswith("skipped: only 0 new training examples")
    assert second.gate is not None and second.gate.reasons == ["adapter-1 is already the champion (unchanged model)"]
    assert Registry.from_settings(Settings()).champion().model_id == "adapter-1"

    # The retrain flow asks the same policy: it refreshes the data and skips too.
    stages.calls.clear()
    skipped = retrain.fn(reason="weekly", project_dir=str(workspace))
    assert [s for s, _ in stages.calls] == BEFORE_TRAINING and skipped.model is None
    assert skipped.skipped is not None and skipped.skipped.startswith("skipped:") and skipped.reason == "weekly"

    # --force: every stage reruns and training happens whatever the policy says; the same scores as the
    # champion's are no gain, so the new adapter is rejected and the champion stays.
    stages.calls.clear()
    forced = nightly.fn(project_dir=str(workspace), force=True)
    assert stages.calls == [(s, True) for s in STAGES]
    assert forced.skipped is None and forced.model is not None and forced.gate is not None and not forced.gate.promote
    assert (forced.model.model_id, forced.model.status) == ("adapter-2", "rejected")
    assert Registry.from_settings(Settings()).champion().model_id == "adapter-1"


def test_a_worse_adapter_is_rejected(workspace: Path, prefect_api: None, stages: Stages, tmp_path: Path) -> None:
    from flows.nightly import nightly

    base = base_champion(workspace, tmp_path)
    stages.gain = -0.1
    summary = nightly.fn(project_dir=str(workspace))
    assert summary.model is not None and summary.gate is not None and not summary.gate.promote
    assert summary.model.status == "rejected" and summary.gate.evidence["decision"] == "reject"
    assert Registry.from_settings(Settings()).champion().model_id == base.model_id


def test_a_passing_model_waits_for_approval_and_stays_pending_without_an_answer(
    workspace: Path, prefect_api: None, stages: Stages, tmp_path: Path
) -> None:
    """gate.require_approval: the gate's pass makes the model pending and the flow run pauses (a real flow run:
    a pause needs one); nobody answers within gate.approval_timeout_s, so the champion does not change."""
    from flows.nightly import nightly

    apply_overrides(workspace / "params.yaml", {"gate.require_approval": True, "gate.approval_timeout_s": 1})
    base = base_champion(workspace, tmp_path)
    summary = nightly(project_dir=str(workspace))
    assert summary.model is not None and summary.gate is not None and summary.gate.promote
    assert (summary.model.model_id, summary.model.status) == ("adapter-1", "pending")
    assert any("waiting for approval" in r for r in summary.gate.reasons)
    registry = Registry.from_settings(Settings())
    assert registry.champion().model_id == base.model_id and registry.get("adapter-1").status == "pending"


def test_a_failing_stage_stops_the_run_and_is_recorded_with_its_stage(workspace: Path, prefect_api: None, stages: Stages) -> None:
    from flows.nightly import nightly

    stages.fail = "redact"
    with pytest.raises(StageError, match="redact"):
        nightly.fn(project_dir=str(workspace))
    assert [s for s, _ in stages.calls] == ["ingest", "clean", "redact"]  # nothing after the failure
    settings = Settings()
    [record] = [RunRecord.read(p) for p in settings.path("runs").glob("*.json")]
    assert record.state == "failed" and record.stage == "redact" and record.error and "StageError" in record.error
    assert not any(settings.path("workspaces").iterdir()), "the run workspace (pre-redaction data) is removed"
    assert not (workspace / "dvc.lock").exists(), "a failed run publishes nothing"
    from llmops.monitoring.history import History

    assert [e.flow for e in History.from_settings(settings).entries()] == ["nightly-failed-in-redact"]


def test_monitor_drift_launches_a_retrain(workspace: Path, prefect_api: None, stages: Stages, tmp_path: Path) -> None:
    """No drift: the monitor refreshes the batch and stops. Drift: it starts the retrain flow (a subflow: the
    test API has no retrain deployment), which refreshes the training data, asks the retrain policy (no trained
    model yet: train) and trains, with the monitor's reason recorded."""
    from flows.monitor import monitor

    base_champion(workspace, tmp_path)
    calm = monitor.fn(project_dir=str(workspace))
    assert stages.calls == [(s, False) for s in MONITORING] and calm.reason is None

    stages.calls.clear()
    stages.drift = True
    summary = monitor.fn(project_dir=str(workspace))
    n = len(MONITORING)
    assert [s for s, _ in stages.calls[:n]] == MONITORING
    assert stages.calls[n:] == [(s, False) for s in BEFORE_TRAINING] + [(s, True) for s in TRAINING]
    assert summary.reason is not None and summary.reason.startswith("retrain triggered: data drift: intent")
    [retrain] = [RunRecord.read(p) for p in Settings().path("runs").glob("*-retrain.json")]
    assert retrain.reason == f"monitor: {summary.reason.removeprefix('retrain triggered: ')}"
    assert retrain.model is not None and retrain.model.model_id == "adapter-1"
