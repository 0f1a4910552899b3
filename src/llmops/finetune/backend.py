"""One interface over the fine-tuning backends, and the finetune stage's single entry point.

``run_finetune`` validates the data first (format, special tokens, tokens, cost cap: see
:mod:`llmops.finetune.validate`) and only then hands it to a backend:

* ``local``: LoRA with peft on SmolLM2-135M-Instruct (CPU by default, GPU when present); the output
  directory holds the adapter, ``training.json`` and the loss curve. ``finetune.method`` ``dpo`` or
  ``sft+dpo`` adds a DPO step on the curated preference pairs (:mod:`llmops.finetune.dpo`) when there
  are at least ``finetune.dpo_min_pairs``;
* ``openai``: an OpenAI fine-tuning job (resumable); the output directory holds ``training.json`` with
  the ``fine_tuned_model`` and the job record.

Both return a :class:`~llmops.reports.training.TrainingReport` (``model_id``, ``base_model``, ``backend`` +
metrics), written to ``training.json`` through that model and read back through it by the registry, the
evaluate stage and the answer service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from llmops.config import FinetuneParams, Settings
from llmops.finetune.validate import ValidationReport, hf_token_counter, special_tokens_of, validate_file
from llmops.reports.training import DataValidation, DpoReport, TrainingReport


class FineTuneBackend(Protocol):
    name: str

    def train(self, train: Path, validation: Path, out_dir: Path) -> TrainingReport:
        """Train on chat JSONL files, write artifacts to ``out_dir``, return the training record."""
        ...


@dataclass
class LocalBackend:
    cfg: FinetuneParams
    base_cache: Path
    seed: int = 42
    loss_plot: Path | None = None
    progress: bool = False
    preferences: Path | None = None  # DPO pairs (trainset stage's dpo.jsonl) for method dpo / sft+dpo
    name: str = "local"

    def train(self, train: Path, validation: Path, out_dir: Path) -> TrainingReport:
        from llmops.finetune.examples import read_chat_jsonl
        from llmops.finetune.lora import plot_loss, train_lora

        pairs = self._pairs()
        if self.cfg.method == "dpo" and isinstance(pairs, str):
            from llmops.errors import EmptyDatasetError

            raise EmptyDatasetError(f"finetune.method is dpo but {pairs}: use method sft or sft+dpo until enough arrive")
        if self.cfg.method == "dpo":
            return self._dpo(pairs, out_dir, None)  # type: ignore[arg-type]
        report = train_lora(
            read_chat_jsonl(train),
            read_chat_jsonl(validation),
            self.cfg,
            base_cache=self.base_cache,
            out_dir=out_dir,
            seed=self.seed,
            progress=self.progress,
        )
        if self.loss_plot is not None:
            plot_loss(report, self.loss_plot)
        record = report.to_report()
        if self.cfg.method == "sft+dpo":
            if isinstance(pairs, str):
                record.dpo = DpoReport(skipped=pairs)
            else:
                dpo = self._dpo(pairs, out_dir, out_dir)
                record.model_id, record.dpo = dpo.model_id, dpo.dpo
                record.write(out_dir)
        return record

    def _pairs(self) -> list[Any] | str:
        """The preference pairs, or why the DPO step cannot run."""
        from llmops.finetune.dpo import read_pairs

        pairs = read_pairs(self.preferences) if self.preferences is not None else []
        if len(pairs) < self.cfg.dpo_min_pairs:
            return f"only {len(pairs)} preference pairs < finetune.dpo_min_pairs {self.cfg.dpo_min_pairs}"
        return pairs

    def _dpo(self, pairs: list[Any], out_dir: Path, init_adapter: Path | None) -> TrainingReport:
        import hashlib

        from llmops.finetune.dpo import train_dpo
        from llmops.llm.local import BASE_MODEL_NAME

        report = train_dpo(
            pairs, self.cfg, base_cache=self.base_cache, out_dir=out_dir, init_adapter=init_adapter, seed=self.seed
        )
        digest = hashlib.sha256((out_dir / "adapter_model.safetensors").read_bytes()).hexdigest()[:10]
        record = TrainingReport(
            model_id=f"{BASE_MODEL_NAME}-lora-{digest}", base_model=BASE_MODEL_NAME, dpo=DpoReport.model_validate(report)
        )
        if init_adapter is None:
            record.write(out_dir)
        return record


@dataclass
class OpenAIBackend:
    cfg: FinetuneParams
    client: Any
    state_dir: Path
    seed: int = 42
    loss_plot: Path | None = None
    log: Callable[[str], None] = print
    name: str = "openai"

    def train(self, train: Path, validation: Path, out_dir: Path) -> TrainingReport:
        from llmops.finetune.openai_jobs import OpenAIFineTuner

        has_validation = validation.exists() and validation.stat().st_size > 0
        state = OpenAIFineTuner(self.client, self.cfg, self.state_dir, log=self.log).run(
            train, validation if has_validation else None, seed=self.seed
        )
        train_loss = [round(float(m["train_loss"]), 4) for m in state.metrics if "train_loss" in m]
        val_loss = [(int(m["step"]), round(float(m["valid_loss"]), 4)) for m in state.metrics if "valid_loss" in m]
        record = TrainingReport(
            model_id=state.fine_tuned_model,
            base_model=self.cfg.openai_model,
            backend="openai",
            job_id=state.job_id,
            trained_tokens=state.trained_tokens,
            epochs=self.cfg.epochs,
            train_loss=train_loss,
            val_loss=val_loss,
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "job.json").write_text(state.model_dump_json(indent=2) + "\n", encoding="utf-8")
        if self.loss_plot is not None:
            from llmops.finetune.lora import TrainReport, plot_loss

            curve = TrainReport(str(state.fine_tuned_model), self.cfg.openai_model, "openai", len(train_loss), 0, 0, 0.0)
            curve.train_loss, curve.val_loss = train_loss, val_loss
            plot_loss(curve, self.loss_plot)
        return record


def validate_for_training(train: Path, validation: Path, cfg: FinetuneParams, base_cache: Path) -> ValidationReport:
    """All pre-training checks on both files; the budget applies to the billed (training) file.

    Tokens are counted with SmolLM2's tokenizer: exact for ``local``; for ``openai`` an estimate, since
    tiktoken's encodings would have to be downloaded at run time.
    """
    from transformers import AutoTokenizer

    from llmops.llm.local import BASE_MODEL_NAME, ensure_base_model

    tokenizer = AutoTokenizer.from_pretrained(ensure_base_model(base_cache))
    model = BASE_MODEL_NAME if cfg.backend == "local" else cfg.openai_model
    count_tokens, special = hf_token_counter(tokenizer), special_tokens_of(tokenizer)
    report = validate_file(train, cfg, model=model, count_tokens=count_tokens, special_tokens=special)
    if validation.exists() and validation.stat().st_size > 0:
        validate_file(validation, cfg, budget=False, model=model, count_tokens=count_tokens, special_tokens=special)
    return report


def make_backend(
    cfg: FinetuneParams, settings: Settings, *, seed: int, loss_plot: Path | None = None, preferences: Path | None = None
) -> FineTuneBackend:
    if cfg.backend == "openai":
        from llmops.finetune.openai_jobs import openai_client

        jobs = settings.path("finetune", "openai-jobs")
        return OpenAIBackend(cfg, openai_client(settings), jobs, seed=seed, loss_plot=loss_plot)
    return LocalBackend(cfg, settings.base_model_cache, seed=seed, loss_plot=loss_plot, progress=True, preferences=preferences)


def run_finetune(
    train: Path,
    validation: Path,
    out_dir: Path,
    cfg: FinetuneParams,
    settings: Settings,
    *,
    seed: int,
    loss_plot: Path | None = None,
    backend: FineTuneBackend | None = None,
    preferences: Path | None = None,
) -> TrainingReport:
    """Validate, then train with the configured backend; writes ``out_dir/training.json`` and returns it.
    ``preferences``: DPO pairs for ``finetune.method`` dpo / sft+dpo (local backend)."""
    report = validate_for_training(train, validation, cfg, settings.base_model_cache)
    backend = backend or make_backend(cfg, settings, seed=seed, loss_plot=loss_plot, preferences=preferences)
    record = backend.train(train, validation, out_dir)
    record.backend = backend.name
    record.validation = DataValidation.model_validate(report.as_dict())
    record.write(out_dir)
    return record
