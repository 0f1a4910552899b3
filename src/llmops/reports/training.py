"""``training.json``: what a fine-tuning run left in its adapter directory.

Written once per step of the run through :meth:`TrainingReport.write` (the LoRA loop, the DPO step, then the
finetune stage with the backend and the data validation), read back through :meth:`TrainingReport.read` by the
registry, the evaluate stage and the answer service. Keys that were never set are not written, so the file
keeps the shape each backend has always given it: the local backend's loss curves and throughput, the OpenAI
backend's job id and billed tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from llmops.reports.base import HandOff

TRAINING_REPORT = "training.json"
PER_STEP = frozenset({"train_loss", "val_loss"})  # the curves: in training.json and the plot, not in summaries


class DpoReport(BaseModel):
    """The DPO step of ``finetune.method`` dpo / sft+dpo, or why it was skipped (``skipped``)."""

    model_config = ConfigDict(extra="forbid")

    pairs: int | None = None
    steps: int | None = None
    seconds: float | None = None
    stopped_by: str | None = None
    loss: list[float] | None = None
    reward_margin: list[float] | None = None
    reward_accuracy: list[float] | None = None
    reference: str | None = None
    skipped: str | None = None


class TokenCounts(BaseModel):
    """Tokens per training example (the tokenizer's count of the whole chat)."""

    model_config = ConfigDict(extra="forbid")

    total: int
    min: int
    p50: int
    p95: int
    max: int


class DataValidation(BaseModel):
    """The pre-training checks on the billed file (:mod:`llmops.finetune.validate`): format errors by check,
    token counts, examples over the context limit, and the billed tokens and their estimated cost."""

    model_config = ConfigDict(extra="forbid")

    examples: int
    errors: dict[str, int]
    tokens: TokenCounts
    over_context_limit: int
    billed_tokens: int
    estimated_cost_usd: float


class TrainingReport(HandOff):
    """One fine-tuning run. ``model_id`` and ``base_model`` always; the rest as the backend reports it."""

    model_config = ConfigDict(extra="forbid")

    model_id: str | None  # None: an OpenAI job that did not produce a model
    base_model: str
    # local LoRA loop (:func:`llmops.finetune.lora.train_lora`), in the order it has always been written
    device: str | None = None
    steps: int | None = None
    examples_seen: int | None = None
    tokens_seen: int | None = None
    seconds: float | None = None
    train_loss: list[float] | None = None
    val_loss_before: float | None = None
    val_loss_after: float | None = None
    val_loss: list[tuple[int, float]] | None = None  # (step, loss)
    step_seconds: list[float] | None = None
    step_tokens: list[int] | None = None
    stopped_by: str | None = None
    threads: int | None = None
    train_examples: int | None = None
    dropped_over_max_seq_len: int | None = None
    tokens_per_s: float | None = None
    steady_tokens_per_s: float | None = None
    examples_per_s: float | None = None
    dpo: DpoReport | None = None
    # OpenAI job (:class:`llmops.finetune.backend.OpenAIBackend`)
    job_id: str | None = None
    trained_tokens: int | None = None
    epochs: int | None = None
    # added by the finetune stage (:func:`llmops.finetune.backend.run_finetune`)
    backend: str | None = None
    validation: DataValidation | None = None

    def summary(self) -> dict[str, Any]:
        """:meth:`as_dict` without the loss curves (the stage's console line, the run summary)."""
        return {k: v for k, v in self.as_dict().items() if k not in PER_STEP}

    def write(self, directory: Path) -> Path:
        """Write ``directory/training.json`` (the one writer of that file); returns its path."""
        return self.dump(directory / TRAINING_REPORT)

    @classmethod
    def read(cls, path: Path) -> TrainingReport:
        """Read a ``training.json`` (or the directory holding one); a missing or malformed file is a
        :class:`DataContractError` naming it."""
        path = path / TRAINING_REPORT if path.is_dir() else path
        return cls.load(
            path,
            what="training report",
            missing="the finetune stage writes it (dvc repro finetune, or fetch the model)",
            fix="rerun the finetune stage that writes it",
        )


def read_training_report(directory: Path) -> TrainingReport:
    """The ``training.json`` in a fine-tuning output directory (see :meth:`TrainingReport.read`)."""
    return TrainingReport.read(directory / TRAINING_REPORT)
