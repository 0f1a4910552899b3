"""Params and overrides: params.yaml sections, `--set` overrides that keep comments and reject bad values."""

import shutil
from pathlib import Path

import pytest

from llmops.config import Params, apply_overrides, load_params
from llmops.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_repo_params_yaml_is_valid_and_complete() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params == Params.model_validate(params.model_dump())
    assert params.finetune.max_steps > 0


def test_the_gate_measures_what_is_served() -> None:
    """The evaluate stage answers gate questions as the service does: same answer cap and context budget
    (evaluation takes the top 3 hits, the service serve.top_k), so a promoted model is not served cut short."""
    params = load_params(ROOT / "params.yaml")
    assert params.serve.max_new_tokens == params.evaluate.max_new_tokens
    assert params.serve.context_chars == params.evaluate.context_chars
    assert params.serve.top_k == 3


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
