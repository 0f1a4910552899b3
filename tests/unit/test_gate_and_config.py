from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llmops.config import Params, apply_overrides, load_params
from llmops.errors import ConfigError
from llmops.evaluation.gate import decide

ROOT = Path(__file__).resolve().parents[2]


def test_repo_params_yaml_is_valid_and_complete() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params == Params.model_validate(params.model_dump())
    assert params.finetune.max_steps > 0


def test_unknown_key_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("finetune:\n  max_stepz: 3\n")
    with pytest.raises(ConfigError, match="max_stepz"):
        load_params(tmp_path / "params.yaml")


def test_overrides_keep_comments_and_validate(tmp_path: Path) -> None:
    target = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", target)
    changed = apply_overrides(target, {"finetune.max_steps": "50", "finetune.learning_rate": "0.001"})
    assert changed == {"finetune.max_steps": 50, "finetune.learning_rate": 0.001}
    assert load_params(target).finetune.max_steps == 50
    assert "# Bounded so the sample run stays" in target.read_text()
    with pytest.raises(ConfigError):
        apply_overrides(target, {"finetune.max_steps": "many"})
    assert load_params(target).finetune.max_steps == 50  # a rejected override writes nothing


def test_gate_first_model_promoted_then_regressions_rejected() -> None:
    champ = {"answers": {"token_f1": 0.30}, "retrieval": {"recall@5": 0.80}}
    assert decide(champ, None).promote
    assert decide({"answers": {"token_f1": 0.31}, "retrieval": {"recall@5": 0.80}}, champ).promote
    worse = decide({"answers": {"token_f1": 0.20}, "retrieval": {"recall@5": 0.80}}, champ)
    assert not worse.promote and "0.2000 <= champion 0.3000" in worse.reasons[0]
    retr = decide({"answers": {"token_f1": 0.35}, "retrieval": {"recall@5": 0.70}}, champ)
    assert not retr.promote and any("recall@5 regressed" in r for r in retr.reasons)
