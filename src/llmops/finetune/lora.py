"""Local fine-tuning backend: LoRA (peft) on the local base model, CPU by default, GPU when present.

A plain PyTorch loop (no Trainer) keeps start-up short on small CPU runs: the prompt part of each
example is masked so the loss is on the assistant's answer only. An example that does not fit
``max_seq_len`` whole is dropped (counted), never cut: a cut answer loses its end-of-turn token and
teaches the model not to stop. The budget: ``max_steps``, and on CPU also ``max_minutes`` of wall time
(the cosine schedule follows whichever runs out first); on a GPU ``epochs_gpu`` passes, when set.
CPU threads are the cores this process may run on (``threads`` overrides).
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmops.config import FinetuneParams
from llmops.errors import EmptyDatasetError
from llmops.records import TrainingExample
from llmops.reports.training import TrainingReport


@dataclass
class TrainReport:
    model_id: str
    base_model: str
    device: str
    steps: int
    examples_seen: int
    tokens_seen: int
    seconds: float
    train_loss: list[float] = field(default_factory=list)
    val_loss_before: float | None = None
    val_loss_after: float | None = None
    val_loss: list[tuple[int, float]] = field(default_factory=list)  # (step, loss) every cfg.eval_every steps
    step_seconds: list[float] = field(default_factory=list)  # wall time of each training step (loss synced)
    step_tokens: list[int] = field(default_factory=list)  # non-padding tokens of each step
    stopped_by: str = "max_steps"  # or "max_minutes" (the CPU time budget ran out first)
    threads: int = 0
    train_examples: int = 0  # examples trained on (after dropping those over max_seq_len)
    dropped_over_max_seq_len: int = 0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens_seen / self.seconds if self.seconds else 0.0

    @property
    def steady_tokens_per_s(self) -> float:
        """Tokens/s after the first step (allocation, kernel selection and any compile are paid there)."""
        rest = self.step_seconds[1:]
        return sum(self.step_tokens[1:]) / sum(rest) if rest and sum(rest) else self.tokens_per_s

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tokens_per_s"] = round(self.tokens_per_s, 1)
        d["steady_tokens_per_s"] = round(self.steady_tokens_per_s, 1)
        d["examples_per_s"] = round(self.examples_seen / self.seconds, 3) if self.seconds else 0.0
        return d

    def to_report(self) -> TrainingReport:
        """The ``training.json`` record of this run."""
        return TrainingReport.model_validate(self.as_dict())


def encode_example(tokenizer: Any, ex: TrainingExample, max_len: int) -> tuple[list[int], list[int]] | None:
    """Token ids and labels (-100 on everything before the last assistant answer); None when the whole
    example (end-of-turn token included) does not fit ``max_len``."""
    messages = [m.model_dump() for m in ex.messages]
    full = list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
    if len(full) > max_len:
        return None
    prompt = list(
        tokenizer.apply_chat_template(messages[:-1], tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
    )
    return full, [-100] * len(prompt) + full[len(prompt) :]


def encode_examples(
    tokenizer: Any, examples: Sequence[TrainingExample], max_len: int
) -> tuple[list[tuple[list[int], list[int]]], int]:
    """Encoded examples that fit and score at least one answer token, and how many were dropped."""
    encoded = [encode_example(tokenizer, ex, max_len) for ex in examples]
    kept = [e for e in encoded if e is not None and any(label != -100 for label in e[1])]
    return kept, len(encoded) - len(kept)


def cpu_threads(requested: int = 0) -> int:
    """``requested``, or the cores this process may run on (its CPU affinity, which containers narrow)."""
    if requested > 0:
        return requested
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _batches(
    encoded: list[tuple[list[int], list[int]]], size: int, pad_id: int, *, pad_to: int | None = None
) -> list[dict[str, Any]]:
    """Right-padded tensors; ``pad_to`` fixes the width (static shapes for a compiled model)."""
    import torch

    out = []
    for i in range(0, len(encoded), size):
        chunk = encoded[i : i + size]
        width = pad_to or max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (x, y) in enumerate(chunk):
            ids[row, : len(x)] = torch.tensor(x)
            labels[row, : len(y)] = torch.tensor(y)
            mask[row, : len(x)] = 1
        out.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return out


def answer_loss(forward: Any, batch: dict[str, Any], device: str, *, static: bool = False) -> Any:
    """Mean next-token cross-entropy over the answer tokens (labels != -100), as transformers computes it,
    but with logits only where a label follows: the prompt's logits (a 49k-vocab projection per token,
    forward and backward) are never computed. ``static``: full logits and the model's own loss (fixed
    shapes for a compiled model)."""
    import torch.nn.functional as F

    inputs = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    if static:
        return forward(**inputs).loss
    labels = inputs.pop("labels")
    follows = labels[:, 1:] != -100  # position t is scored on token t+1
    # The decoder and head of the (peft-wrapped) causal LM, through transformers' generic accessors:
    # no reliance on a particular version's ``logits_to_keep`` semantics.
    lm = forward.get_base_model() if hasattr(forward, "get_base_model") else forward
    hidden = lm.get_decoder()(**inputs).last_hidden_state[:, :-1][follows]  # (scored tokens, hidden)
    logits = lm.get_output_embeddings()(hidden)
    return F.cross_entropy(logits.float(), labels[:, 1:][follows])


def _mean_loss(model: Any, batches: list[dict[str, Any]], device: str) -> float | None:
    import torch

    if not batches:
        return None
    total, n = 0.0, 0
    model.eval()
    with torch.inference_mode():
        for b in batches:
            total += float(answer_loss(model, b, device))
            n += 1
    model.train()
    return round(total / n, 4)


def train_lora(
    train: Sequence[TrainingExample],
    validation: Sequence[TrainingExample],
    cfg: FinetuneParams,
    *,
    base_cache: Path,
    out_dir: Path,
    seed: int = 42,
    progress: bool = False,
) -> TrainReport:
    """Train a LoRA adapter for at most ``cfg.max_steps`` steps and save it to ``out_dir``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmops.llm.local import BASE_MODEL_NAME, ensure_base_model

    if not train:
        raise EmptyDatasetError("the training set is empty: check the trainset stage counts (skipped reasons)")
    random.seed(seed)
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    threads = cpu_threads(cfg.threads)
    if device == "cpu":
        torch.set_num_threads(threads)
    base_dir = ensure_base_model(base_cache)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    # Any: transformers' decorated `.to` and the base -> peft model swap are beyond what mypy can follow.
    model: Any = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = get_peft_model(
        model,
        LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            # ["all-linear"] is peft's shorthand for every linear layer but the output head.
            target_modules="all-linear" if list(cfg.target_modules) == ["all-linear"] else list(cfg.target_modules),
            task_type="CAUSAL_LM",
        ),
    )
    model.to(device)

    examples = list(train)[: cfg.max_examples]
    random.shuffle(examples)
    encoded, dropped = encode_examples(tokenizer, examples, cfg.max_seq_len)
    if not encoded:
        raise EmptyDatasetError(
            f"no example fits max_seq_len={cfg.max_seq_len} with its answer: raise it (the trainset stage fits answers "
            "to finetune.max_seq_len; rebuild it after a change)"
        )
    compiled = cfg.compile and device == "cuda"
    pad_to = cfg.max_seq_len if compiled else None
    val_encoded, _ = encode_examples(tokenizer, list(validation)[: cfg.eval_examples], cfg.max_seq_len)
    val_batches = _batches(val_encoded, cfg.batch_size, pad_id, pad_to=pad_to)
    if compiled and len(encoded) > cfg.batch_size:  # a smaller last batch would compile a second graph
        encoded = encoded[: len(encoded) - len(encoded) % cfg.batch_size]
    batches = _batches(encoded, cfg.batch_size, pad_id, pad_to=pad_to)
    # The compiled module shares parameters with ``model``: optimiser, eval and save use ``model``.
    forward = torch.compile(model) if compiled else model
    report = TrainReport(
        model_id="",
        base_model=BASE_MODEL_NAME,
        device=f"{device}+compile" if compiled else device,
        steps=0,
        examples_seen=0,
        tokens_seen=0,
        seconds=0.0,
        threads=threads if device == "cpu" else 0,
        train_examples=len(encoded),
        dropped_over_max_seq_len=dropped,
    )
    report.val_loss_before = _mean_loss(model, val_batches, device)

    trainable = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(trainable, lr=cfg.learning_rate)
    steps = cfg.max_steps
    if device == "cuda" and cfg.epochs_gpu > 0:
        steps = max(1, math.ceil(cfg.epochs_gpu * len(batches)))
    budget_s = cfg.max_minutes * 60 if device == "cpu" and cfg.max_minutes > 0 else math.inf
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="lora", unit="step")
    model.train()
    start = time.perf_counter()
    done = 0
    for step in range(steps):
        step_start = time.perf_counter()
        if step_start - start >= budget_s:
            report.stopped_by = "max_minutes"
            break
        batch = batches[step % len(batches)]
        # Cosine decay over whichever budget runs out first: steps, or wall time on CPU.
        elapsed = max(step / steps, (step_start - start) / budget_s)
        lr = cfg.learning_rate * 0.5 * (1 + math.cos(math.pi * min(elapsed, 1.0)))
        for group in optim.param_groups:
            group["lr"] = lr
        # bf16 autocast on a GPU (weights and LoRA params stay fp32); plain fp32 on CPU.
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = answer_loss(forward, batch, device, static=compiled)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optim.step()
        optim.zero_grad(set_to_none=True)
        report.train_loss.append(round(float(loss.detach()), 4))  # also waits for the GPU: honest step times
        report.step_seconds.append(round(time.perf_counter() - step_start, 4))
        report.step_tokens.append(int(batch["attention_mask"].sum()))
        report.examples_seen += int(batch["input_ids"].shape[0])
        report.tokens_seen += report.step_tokens[-1]
        done = step + 1
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < steps:
            mid = _mean_loss(model, val_batches, device)
            if mid is not None:
                report.val_loss.append((step + 1, mid))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=report.train_loss[-1])
    report.seconds = round(time.perf_counter() - start, 3)
    report.steps = done
    if bar is not None:
        bar.close()
    report.val_loss_after = _mean_loss(model, val_batches, device)
    if report.val_loss_before is not None and report.val_loss_after is not None:
        report.val_loss = [(0, report.val_loss_before), *report.val_loss, (done, report.val_loss_after)]

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    digest = hashlib.sha256((out_dir / "adapter_model.safetensors").read_bytes()).hexdigest()[:10]
    report.model_id = f"{BASE_MODEL_NAME}-lora-{digest}"
    report.to_report().write(out_dir)
    return report


def merge_adapter(base_cache: Path, adapter_dir: Path, out_dir: Path) -> Path:
    """Fold the LoRA weights into the base model and save a plain model for serving (no peft at run time)."""
    from llmops.llm.local import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(base_cache, adapter_dir, device="cpu")
    merged = model.merge_and_unload()
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return out_dir


def plot_loss(report: TrainReport, path: Path) -> None:
    """Training loss per step, with validation loss before/after as reference lines (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(report.train_loss) + 1), report.train_loss, marker="o", label="train loss")
    if report.val_loss:
        ax.plot([s for s, _ in report.val_loss], [v for _, v in report.val_loss], marker="s", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(report.model_id)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
