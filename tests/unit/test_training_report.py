"""training.json: the writer and every reader go through one model, and a bad file names itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops.errors import DataContractError
from llmops.finetune.lora import TrainReport
from llmops.reports.training import DataValidation, DpoReport, TrainingReport, read_training_report


def _local() -> TrainReport:
    r = TrainReport("SmolLM2-135M-Instruct-lora-abc", "SmolLM2-135M-Instruct", "cpu", 2, 4, 200, 3.5, threads=2)
    r.train_loss, r.val_loss_before, r.val_loss_after = [2.5, 2.1], 2.6, 2.2
    r.val_loss, r.step_seconds, r.step_tokens = [(0, 2.6), (2, 2.2)], [2.0, 1.5], [100, 100]
    return r


def test_local_report_round_trips_in_the_shape_the_loop_always_wrote(tmp_path: Path) -> None:
    loop = _local()
    report = loop.to_report()
    path = report.write(tmp_path)
    # The same bytes as the dict the training loop has always dumped: keys, order and values.
    assert path.read_text() == json.dumps(loop.as_dict(), indent=2) + "\n"
    back = read_training_report(tmp_path)
    assert back == report and back.val_loss == [(0, 2.6), (2, 2.2)]
    tokens = {"total": 400, "min": 90, "p50": 100, "p95": 110, "max": 110}
    checks = {"examples": 4, "errors": {}, "tokens": tokens, "over_context_limit": 0, "billed_tokens": 400}
    back.backend = "local"  # the stage's additions are written, then read back
    back.validation = DataValidation.model_validate(checks | {"estimated_cost_usd": 0.0})
    back.write(tmp_path)
    again = TrainingReport.read(tmp_path / "training.json")
    assert again == back and list(again.as_dict())[-2:] == ["backend", "validation"]


def test_only_the_keys_a_backend_set_are_written(tmp_path: Path) -> None:
    dpo_only = TrainingReport(model_id="m", base_model="b", dpo=DpoReport(skipped="only 2 pairs"))
    dpo_only.write(tmp_path)
    assert json.loads((tmp_path / "training.json").read_text()) == {
        "model_id": "m",
        "base_model": "b",
        "dpo": {"skipped": "only 2 pairs"},
    }
    assert TrainingReport.read(tmp_path) == dpo_only
    assert "train_loss" not in _local().to_report().summary() and "val_loss" not in _local().to_report().summary()


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("{not json", "is not a valid training report"),
        ('{"base_model": "b"}', r"\(model_id: Field required\)"),
        ('{"model_id": "m", "base_model": "b", "steps": "many"}', r"\(steps: Input should be a valid integer"),
        ('{"model_id": "m", "base_model": "b", "learning_rate": 0.1}', r"\(learning_rate: Extra inputs"),
    ],
)
def test_a_malformed_report_is_a_data_contract_error_naming_the_file(tmp_path: Path, body: str, match: str) -> None:
    path = tmp_path / "training.json"
    path.write_text(body)
    with pytest.raises(DataContractError, match=match) as err:
        TrainingReport.read(tmp_path)
    assert str(path) in str(err.value)


def test_a_missing_report_says_which_stage_writes_it(tmp_path: Path) -> None:
    with pytest.raises(DataContractError, match=r"training\.json does not exist: the finetune stage writes it"):
        read_training_report(tmp_path)


def test_the_trained_model_is_read_through_the_report(tmp_path: Path, settings_env: object) -> None:
    from llmops.config import Settings
    from llmops.errors import ConfigError
    from llmops.llm.trained import model_in

    TrainingReport(model_id=None, base_model="gpt-4o-mini-2024-07-18", backend="openai").write(tmp_path)
    with pytest.raises(ConfigError, match="no fine_tuned_model"):
        model_in(tmp_path, Settings())


def test_the_data_validation_summary_is_what_the_checks_report() -> None:
    from llmops.finetune.validate import ValidationReport

    checks = ValidationReport(examples=3, token_counts=[30, 10, 20], too_long=1, billed_tokens=60, estimated_cost_usd=0.00018)
    checks.add("missing_content", 2)
    summary = DataValidation.model_validate(checks.as_dict())  # a key the checks add without the model fails here
    assert summary.model_dump() == checks.as_dict() and summary.tokens.p50 == 20 and summary.errors == {"missing_content": 1}
