"""Local fine-tuning backend: LoRA (peft) on the local base model, CPU by default, GPU when present.

A plain PyTorch loop (no Trainer) keeps start-up short on small CPU runs: the prompt part of each
example is masked so the loss is on the assistant's answer only.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmops.config import FinetuneParams
from llmops.errors import EmptyDatasetError
from llmops.records import TrainingExample


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


def encode_example(tokenizer: Any, ex: TrainingExample, max_len: int) -> tuple[list[int], list[int]]:
    """Token ids and labels; labels are -100 on everything before the last assistant answer."""
    messages = [m.model_dump() for m in ex.messages]
    full = list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
    prompt = list(
        tokenizer.apply_chat_template(messages[:-1], tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
    )
    labels = [-100] * len(prompt) + full[len(prompt) :]
    if len(prompt) >= max_len:  # keep the end of a long prompt and some of the answer
        cut = len(prompt) - max_len // 2
        full, labels = full[cut:], labels[cut:]
    return full[:max_len], labels[:max_len]


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
    base_dir = ensure_base_model(base_cache)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
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
    encoded = [encode_example(tokenizer, ex, cfg.max_seq_len) for ex in examples]
    encoded = [e for e in encoded if any(label != -100 for label in e[1])]
    if not encoded:
        raise EmptyDatasetError(f"no example keeps an answer within max_seq_len={cfg.max_seq_len}: raise it")
    compiled = cfg.compile and device == "cuda"
    pad_to = cfg.max_seq_len if compiled else None
    val_encoded = [encode_example(tokenizer, ex, cfg.max_seq_len) for ex in list(validation)[: cfg.eval_examples]]
    val_encoded = [e for e in val_encoded if any(label != -100 for label in e[1])]  # an empty answer scores nothing
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
    )
    report.val_loss_before = _mean_loss(model, val_batches, device)

    trainable = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(trainable, lr=cfg.learning_rate)
    steps = cfg.max_steps
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="lora", unit="step")
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        step_start = time.perf_counter()
        batch = batches[step % len(batches)]
        lr = cfg.learning_rate * 0.5 * (1 + math.cos(math.pi * step / steps))  # cosine decay
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
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < steps:
            mid = _mean_loss(model, val_batches, device)
            if mid is not None:
                report.val_loss.append((step + 1, mid))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=report.train_loss[-1])
    report.seconds = round(time.perf_counter() - start, 3)
    report.steps = steps
    if bar is not None:
        bar.close()
    report.val_loss_after = _mean_loss(model, val_batches, device)
    if report.val_loss_before is not None and report.val_loss_after is not None:
        report.val_loss = [(0, report.val_loss_before), *report.val_loss, (steps, report.val_loss_after)]

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    digest = hashlib.sha256((out_dir / "adapter_model.safetensors").read_bytes()).hexdigest()[:10]
    report.model_id = f"{BASE_MODEL_NAME}-lora-{digest}"
    (out_dir / "training.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
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
