"""The base model as first champion, through the real path: the local model answers the gate set over a
real Chroma index, the record is registered with per-question scores, reused while the evaluation inputs
hold, and re-scored when the index changes."""

from __future__ import annotations

import json
from pathlib import Path

from llmops import workspace as ws
from llmops.config import Params, Settings
from llmops.finetune.registry import Registry
from llmops.records import Document, EvalQuestion

ROOT = Path(__file__).resolve().parents[2]


def _workspace(tmp_path: Path, embedder: object) -> tuple[Path, Params]:
    from llmops.index.refresh import refresh_index
    from llmops.index.store import chroma_client

    docs = [Document.model_validate_json(line) for line in (ROOT / "data/sample/documents.jsonl").read_text().splitlines()[:4]]
    known = {d.doc_id for d in docs}
    lines = (ROOT / "data/sample/eval_questions.jsonl").read_text().splitlines()
    questions = [q for q in map(EvalQuestion.model_validate_json, lines) if q.gold_doc_ids[0] in known][:3]
    project = tmp_path / "project"
    (project / "data/gateset").mkdir(parents=True)
    (project / "data/gateset/questions.jsonl").write_text("".join(q.model_dump_json() + "\n" for q in questions))
    (project / ws.INDEX_MANIFEST).parent.mkdir(parents=True)
    (project / ws.INDEX_MANIFEST).write_text(json.dumps({"chunk_id": "v1"}) + "\n")
    params = Params()
    params = params.model_copy(
        update={
            "evaluate": params.evaluate.model_copy(update={"answer_questions": 2, "max_new_tokens": 4, "judge_questions": 0}),
            "gate": params.gate.model_copy(update={"min_paired_examples": 2}),
        }
    )
    refresh_index(docs, chroma_client(Settings()), embedder, params.index)  # type: ignore[arg-type]
    return project, params


def test_base_is_evaluated_registered_reused_and_rescored_on_a_new_index(
    settings_env: Path, tmp_path: Path, embedder: object
) -> None:
    from llmops.evaluation.baseline import ensure_champion, evaluation_key

    project, params = _workspace(tmp_path, embedder)
    settings = Settings()
    registry = Registry.from_settings(settings)
    base = ensure_champion(registry, project, settings, params)
    assert registry.champion().model_id == base.model_id == "SmolLM2-135M-Instruct" and base.backend == "base"
    assert len(base.eval_scores) == 2 and base.evaluation["answers"]["answers"] == 2 and not base.artifact_path
    assert base.eval_key == evaluation_key(project, params) and base.evaluation["model_id"] == "SmolLM2-135M-Instruct"
    version = registry.load().version

    again = ensure_champion(registry, project, settings, params)  # same gate set, index, decoding: stored scores
    assert registry.load().version == version and again.eval_scores == base.eval_scores

    (project / ws.INDEX_MANIFEST).write_text(json.dumps({"chunk_id": "v2"}) + "\n")  # a new index version
    rescored = ensure_champion(registry, project, settings, params)
    assert rescored.model_id == base.model_id and rescored.eval_key != base.eval_key
    assert rescored.events[-1]["reason"].startswith("re-scored") and set(rescored.eval_scores) == set(base.eval_scores)
