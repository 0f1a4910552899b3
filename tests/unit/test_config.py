"""Params and overrides: params.yaml sections, `--set` overrides that keep comments and reject bad values."""

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from llmops.config import Params, apply_overrides, load_params
from llmops.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _unset(model: type[BaseModel], data: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the fields of ``model`` (nested sections included) that ``data`` does not set."""
    missing = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        sub = field.annotation if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel) else None
        if key not in data:
            missing.append(prefix + key)
        elif sub is not None and isinstance(data[key], dict):
            missing += _unset(sub, data[key], f"{prefix}{key}.")
    return missing


def test_repo_params_yaml_sets_every_tunable() -> None:
    """Every field of :class:`Params` is written out in params.yaml (where tunables are documented), so a
    tunable added to config.py alone, running on a default nobody sees, fails here."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    load_params(ROOT / "params.yaml")  # and it validates
    assert _unset(Params, raw) == []


def test_unset_tunable_is_reported() -> None:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    del raw["finetune"]["max_steps"], raw["gateset"]
    assert _unset(Params, raw) == ["finetune.max_steps", "gateset"]


def test_params_survive_a_yaml_round_trip(tmp_path: Path) -> None:
    """Params written back as YAML (what `--set` overrides and the run records do) load to the same values:
    no field whose type YAML cannot carry (tuples, paths, enums) or whose validator rewrites its input."""
    params = load_params(ROOT / "params.yaml")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json", by_alias=True)), encoding="utf-8")
    reloaded = load_params(tmp_path / "params.yaml")
    assert reloaded.model_dump() == params.model_dump()
    assert reloaded.finetune.max_steps > 0


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
