"""Preference training: the curated feedback pairs (a correction or a well-rated answer over a badly rated
one, for one question) train a DPO step with TRL's ``DPOTrainer`` on a LoRA adapter.

The pairs carry the served prompt (:func:`build_preference_pairs`: same retriever, ``top_k`` and
``context_chars`` as the answer service, both answers fit to ``max_seq_len``), like the SFT examples.
``finetune.method``: ``dpo`` trains a fresh adapter on the base model; ``sft+dpo`` continues the SFT
adapter, with the SFT adapter as the frozen reference (TRL copies it to a ``ref`` adapter). Fewer than
``finetune.dpo_min_pairs`` pairs: the step is skipped, and the record says so.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from llmops.config import BaseParams, FinetuneParams
from llmops.records import ChatMessage, EvalQuestion


class CuratedPair(BaseModel):
    """A line of the feedback stage's ``dpo.jsonl``: one question, a preferred and a rejected answer."""

    prompt: str
    chosen: str
    rejected: str
    generation_ids: list[str] = []
    chosen_id: str = ""  # the generation of the chosen side (the trainset stage drops the pair when it drops that example)


class PreferencePair(BaseModel):
    """One DPO example in TRL's conversational format (``prompt`` messages, ``chosen``/``rejected`` replies)."""

    prompt: list[ChatMessage]
    chosen: str
    rejected: str
    group_id: str = ""

    def to_trl(self) -> dict[str, Any]:
        return {
            "prompt": [m.model_dump() for m in self.prompt],
            "chosen": [{"role": "assistant", "content": self.chosen}],
            "rejected": [{"role": "assistant", "content": self.rejected}],
        }


def build_preference_pairs(
    rows: Sequence[CuratedPair],
    eval_questions: Sequence[EvalQuestion],
    base: BaseParams,
    *,
    prompt: Any = None,
    fit: Any = None,
) -> tuple[list[PreferencePair], Counter[str]]:
    """Curated pairs (feedback stage) -> pairs in the served
    prompt format (``prompt``: :class:`~llmops.finetune.trainset.ServingPrompt`; ``fit``:
    :class:`~llmops.finetune.trainset.AnswerFit`); eval questions and pairs that do not fit are dropped, counted."""
    from llmops.finetune.examples import broken_span, fit_answer
    from llmops.llm.prompts import rag_messages

    skipped: Counter[str] = Counter()
    eval_queries = {" ".join(q.query.split()).casefold() for q in eval_questions}
    kept = [r for r in rows if " ".join(r.prompt.split()).casefold() not in eval_queries]
    if len(kept) < len(rows):
        skipped["eval_overlap"] += len(rows) - len(kept)
    rows = kept
    retriever = getattr(prompt, "retriever", None)
    contexts: dict[str, list[str]] = {}
    if retriever is not None and rows:
        questions = list(dict.fromkeys(r.prompt for r in rows))
        hits = retriever.search(questions, k=prompt.cfg.top_k)
        contexts = {q: [h["text"] for h in hs] for q, hs in zip(questions, hits, strict=True)}
    pairs = []
    for r in rows:
        if broken_span(r.chosen) or r.chosen.strip() == r.rejected.strip():
            skipped["broken_or_equal"] += 1
            continue
        if retriever is not None:
            messages = rag_messages(r.prompt, contexts[r.prompt], base.system_prompt, prompt.cfg.context_chars)
        else:
            messages = [{"role": "system", "content": base.system_prompt}, {"role": "user", "content": r.prompt}]
        chosen, rejected = r.chosen, r.rejected
        if fit is not None:
            if hasattr(fit, "fit_many"):  # AnswerFit: outcomes reused across runs when it has a cache
                (fit_chosen, outcome), (fit_rejected, outcome_r) = fit.fit_many([(messages, chosen), (messages, rejected)])
            else:
                fit_chosen, outcome = fit_answer(messages, chosen, fit.count_tokens, fit.max_seq_len)
                fit_rejected, outcome_r = fit_answer(messages, rejected, fit.count_tokens, fit.max_seq_len)
            if fit_chosen is None or fit_rejected is None:
                skipped[outcome if fit_chosen is None else outcome_r] += 1
                continue
            chosen, rejected = fit_chosen, fit_rejected
        pairs.append(
            PreferencePair(
                prompt=[ChatMessage.model_validate(m) for m in messages],
                chosen=chosen,
                rejected=rejected,
                group_id=",".join(r.generation_ids),
            )
        )
    return pairs, skipped


def read_pairs(path: Path) -> list[PreferencePair]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [PreferencePair.model_validate_json(line) for line in fh if line.strip()]


def _checkpointing_field(config_class: Any) -> str:
    import dataclasses

    names = {f.name for f in dataclasses.fields(config_class)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def train_dpo(
    pairs: Sequence[PreferencePair],
    cfg: FinetuneParams,
    *,
    base_cache: Path,
    out_dir: Path,
    init_adapter: Path | None = None,
    seed: int = 42,
) -> dict[str, Any]:
    """Run ``cfg.dpo_steps`` DPO steps (within ``cfg.max_minutes`` on CPU) and save the adapter to ``out_dir``.

    ``init_adapter``: continue this LoRA adapter (the SFT result; it is also the reference); None: a fresh
    LoRA (``cfg.lora_*``, ``cfg.target_modules``) on the base model, the base model as the reference."""
    import tempfile

    import torch
    from datasets import Dataset
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    from llmops.errors import EmptyDatasetError
    from llmops.finetune.lora import cpu_threads
    from llmops.llm.local import ensure_base_model

    if not pairs:
        raise EmptyDatasetError("no preference pairs to train DPO on: check the feedback and trainset stage counts")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(cpu_threads(cfg.threads))
    base_dir = ensure_base_model(base_cache)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model: Any = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    peft_config = None
    if init_adapter is not None:
        model = PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
    else:
        modules: Any = "all-linear" if list(cfg.target_modules) == ["all-linear"] else list(cfg.target_modules)
        peft_config = LoraConfig(
            r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, target_modules=modules, task_type="CAUSAL_LM"
        )
    budget_s = cfg.max_minutes * 60 if device == "cpu" and cfg.max_minutes > 0 else None

    class Budget(TrainerCallback):
        def __init__(self) -> None:
            self.start = time.perf_counter()
            self.stopped = False

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if budget_s is not None and time.perf_counter() - self.start >= budget_s:
                control.should_training_stop = self.stopped = True
            return control

    budget = Budget()
    no_checkpointing: dict[str, Any] = {_checkpointing_field(DPOConfig): False}
    with tempfile.TemporaryDirectory() as scratch:
        args = DPOConfig(
            output_dir=scratch,
            max_steps=cfg.dpo_steps,
            per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.dpo_learning_rate,
            beta=cfg.dpo_beta,
            max_length=cfg.max_seq_len,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            use_cpu=device == "cpu",
            bf16=device == "cuda",
            seed=seed,
            disable_tqdm=True,
            # TRL's default trades ~30% more compute for memory a 135M model does not need (transformers 5 calls
            # it activation checkpointing and warns on the old name)
            **no_checkpointing,
            dataloader_num_workers=0,
        )
        trainer = DPOTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list([p.to_trl() for p in pairs]),
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[budget],
        )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        logs = [h for h in trainer.state.log_history if "loss" in h]
        out_dir.mkdir(parents=True, exist_ok=True)
        # transformers types Trainer.model as PreTrainedModel | Module | None; here it is the PeftModel passed in.
        trainer.model.save_pretrained(str(out_dir), selected_adapters=["default"])  # type: ignore[union-attr,operator]
    return {
        "pairs": len(pairs),
        "steps": int(trainer.state.global_step),
        "seconds": round(seconds, 3),
        "stopped_by": "max_minutes" if budget.stopped else "dpo_steps",
        "loss": [round(float(h["loss"]), 4) for h in logs],
        "reward_margin": [round(float(h["rewards/margins"]), 4) for h in logs if "rewards/margins" in h],
        "reward_accuracy": [round(float(h["rewards/accuracies"]), 4) for h in logs if "rewards/accuracies" in h],
        "reference": "sft adapter" if init_adapter is not None else "base model",
    }
