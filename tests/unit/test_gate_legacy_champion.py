"""A registry from before the base model was a record: its champion never met the base. The base is
evaluated and registered (local model over a real Chroma index) and the old champion goes through the
gate against it; one that does not pass hands the title to the base."""

from __future__ import annotations

import json
from pathlib import Path

from llmops.config import Settings
from llmops.finetune.registry import ModelRecord, Registry
from tests.unit.test_gate_baseline import _workspace


def test_old_champion_without_base_record_is_gated_against_the_base(settings_env: Path, tmp_path: Path, embedder: object) -> None:
    from llmops.evaluation.baseline import ensure_champion, evaluation_key

    project, params = _workspace(tmp_path, embedder)
    settings = Settings()
    registry = Registry.from_settings(settings)
    lines = (project / params.evaluate.gate_questions).read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines][: params.evaluate.answer_questions]
    # An adapter promoted with "no champion yet" by an older release: its stored gate scores are all 0
    # (answers sharing no word with the references), under today's evaluation key, so it is not re-run.
    old = ModelRecord(
        model_id="SmolLM2-135M-Instruct-lora-old",
        base_model="SmolLM2-135M-Instruct",
        data_rev="old",
        evaluation={"answers": {"token_f1": 0.0}},
        eval_scores={i: [0.0] for i in ids},
        eval_key=evaluation_key(project, params),
    )
    registry.register(old, None)
    registry.set_status(old.model_id, "champion", ["no champion yet: the first evaluated model becomes champion"])
    assert registry.get("SmolLM2-135M-Instruct") is None

    champion = ensure_champion(registry, project, settings, params)

    base = registry.get("SmolLM2-135M-Instruct")
    assert base is not None and base.backend == "base" and len(base.eval_scores) == 2
    assert champion.model_id == base.model_id == registry.champion().model_id
    demoted = registry.get(old.model_id)
    assert demoted is not None and demoted.status == "rejected"
    assert demoted.gate_evidence["champion_id"] == base.model_id and demoted.gate_evidence["decision"] in {"reject", "no change"}
    assert any("gated against the base model" in r for r in demoted.gate_reasons)
    assert old.model_id in registry.load().previous_champions  # a person can still roll back to it

    version = registry.load().version
    again = ensure_champion(registry, project, settings, params)  # settled: nothing re-evaluated, nothing re-gated
    assert again.model_id == base.model_id and registry.load().version == version
