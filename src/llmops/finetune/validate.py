"""Validate chat fine-tuning data before any training or upload, and estimate its cost.

The seven format checks are those of OpenAI's chat fine-tuning data preparation (cookbook "Data
preparation and analysis for chat model fine-tuning"): ``data_type``, ``missing_messages_list``,
``message_missing_key``, ``message_unrecognized_key``, ``unrecognized_role``, ``missing_content``,
``example_missing_assistant_message``. On top of them: unparsable lines, forbidden special tokens in
content (a literal ``<|im_end|>`` would corrupt the chat template), token counts per example with the
target model's tokenizer against its context limit, and cost = billed tokens x epochs x price, capped by
``finetune.budget_usd`` -- all before a single GPU second or upload is spent.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.config import FinetuneParams
from llmops.errors import BudgetExceeded, ConfigError, TrainingDataError

FORMAT_CHECKS = (
    "data_type",
    "missing_messages_list",
    "message_missing_key",
    "message_unrecognized_key",
    "unrecognized_role",
    "missing_content",
    "example_missing_assistant_message",
)
ALLOWED_KEYS = {"role", "content", "name", "function_call", "weight"}
ALLOWED_ROLES = {"system", "user", "assistant", "function"}
# Chat-template control strings of SmolLM2 / ChatML and OpenAI's reserved tokens.
DEFAULT_SPECIAL_TOKENS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|fim_prefix|>", "<|endofprompt|>")

CountTokens = Callable[[list[dict[str, Any]]], int]


@dataclass
class ValidationReport:
    examples: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    error_lines: dict[str, list[int]] = field(default_factory=dict)
    token_counts: list[int] = field(default_factory=list)
    too_long: int = 0
    billed_tokens: int = 0
    estimated_cost_usd: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, check: str, line_no: int) -> None:
        self.errors[check] += 1
        self.error_lines.setdefault(check, []).append(line_no)

    def as_dict(self) -> dict[str, Any]:
        counts = sorted(self.token_counts)
        pct = (lambda q: counts[min(len(counts) - 1, int(q * len(counts)))]) if counts else (lambda q: 0)
        return {
            "examples": self.examples,
            "errors": dict(sorted(self.errors.items())),
            "tokens": {
                "total": sum(counts),
                "min": counts[0] if counts else 0,
                "p50": pct(0.5),
                "p95": pct(0.95),
                "max": counts[-1] if counts else 0,
            },
            "over_context_limit": self.too_long,
            "billed_tokens": self.billed_tokens,
            "estimated_cost_usd": round(self.estimated_cost_usd, 4),
        }


def format_errors(example: Any) -> list[str]:
    """The OpenAI format checks failed by one parsed JSONL line (empty list: the example is well formed)."""
    if not isinstance(example, dict):
        return ["data_type"]
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["missing_messages_list"]
    found: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            found.append("data_type")
            continue
        if "role" not in message or "content" not in message:
            found.append("message_missing_key")
        if any(k not in ALLOWED_KEYS for k in message):
            found.append("message_unrecognized_key")
        if message.get("role") not in ALLOWED_ROLES:
            found.append("unrecognized_role")
        content, function_call = message.get("content"), message.get("function_call")
        if (not content and not function_call) or not isinstance(content, str | type(None)):
            found.append("missing_content")
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        found.append("example_missing_assistant_message")
    return list(dict.fromkeys(found))


def hf_token_counter(tokenizer: Any) -> CountTokens:
    """Tokens of one example as the model sees it (chat template applied)."""

    def count(messages: list[dict[str, Any]]) -> int:
        plain = [{"role": m["role"], "content": m["content"]} for m in messages]
        return len(tokenizer.apply_chat_template(plain, tokenize=True, return_dict=True)["input_ids"])

    return count


def base_token_counter(base_cache: Any) -> CountTokens:
    """:func:`hf_token_counter` of the local base model's tokenizer (what local training encodes with): the same
    counts from its chat template and ``tokenizer.json`` without importing transformers
    (:func:`llmops.finetune.tokens.template_token_counter`) when the model directory allows."""
    from llmops.finetune.tokens import template_token_counter
    from llmops.llm.local import ensure_base_model

    model_dir = ensure_base_model(base_cache)
    counter = template_token_counter(model_dir)
    if counter is not None:
        return counter
    from transformers import AutoTokenizer

    return hf_token_counter(AutoTokenizer.from_pretrained(model_dir))


def special_tokens_of(tokenizer: Any) -> tuple[str, ...]:
    extra = [t for t in getattr(tokenizer, "all_special_tokens", []) if t.startswith("<") and len(t) > 2]
    return tuple(dict.fromkeys([*DEFAULT_SPECIAL_TOKENS, *extra]))


def validate_examples(
    lines: Iterable[str],
    cfg: FinetuneParams,
    *,
    model: str,
    count_tokens: CountTokens,
    special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
) -> ValidationReport:
    """Run every check over JSONL ``lines``; the cost is computed for ``model`` from the price table."""
    if model not in cfg.price_per_1m_tokens:
        raise ConfigError(
            f"no price for {model!r} in finetune.price_per_1m_tokens ({', '.join(cfg.price_per_1m_tokens)}): "
            "add it to params.yaml"
        )
    report = ValidationReport()
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        report.examples += 1
        try:
            example = json.loads(line)
        except json.JSONDecodeError:
            report.add("invalid_json", line_no)
            continue
        problems = format_errors(example)
        for check in problems:
            report.add(check, line_no)
        if problems:
            continue
        messages = example["messages"]
        if any(tok in (m.get("content") or "") for m in messages for tok in special_tokens):
            report.add("forbidden_special_token", line_no)
            continue
        n = count_tokens(messages)
        report.token_counts.append(n)
        if n > cfg.context_limit:
            report.too_long += 1  # trained truncated; billed up to the limit, as OpenAI does
        report.billed_tokens += min(n, cfg.context_limit)
    if report.examples == 0:
        report.add("no_examples", 0)
    report.estimated_cost_usd = report.billed_tokens * cfg.epochs * cfg.price_per_1m_tokens[model] / 1e6
    return report


def check_report(report: ValidationReport, cfg: FinetuneParams, *, source: str, budget: bool = True) -> None:
    """Raise before training/upload: :class:`TrainingDataError` on any failed check, :class:`BudgetExceeded` over the cap."""
    if not report.ok:
        detail = "; ".join(
            f"{check}: {n} (lines {', '.join(map(str, report.error_lines[check][:5]))})" for check, n in report.errors.items()
        )
        raise TrainingDataError(f"{source} failed validation, nothing was trained or uploaded: {detail}")
    if budget and report.estimated_cost_usd > cfg.budget_usd:
        raise BudgetExceeded(
            f"estimated fine-tuning cost ${report.estimated_cost_usd:.2f} ({report.billed_tokens} tokens x {cfg.epochs} "
            f"epochs) exceeds finetune.budget_usd ${cfg.budget_usd:.2f}: nothing was uploaded. Reduce "
            "trainset.max_examples or epochs, or raise the budget"
        )


def validate_file(
    path: Path,
    cfg: FinetuneParams,
    *,
    model: str,
    count_tokens: CountTokens,
    special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
    budget: bool = True,
) -> ValidationReport:
    """Validate one chat JSONL file and raise if it may not be trained on (see :func:`check_report`).

    ``budget=False`` for files that are not billed as training tokens (the validation file).
    """
    with path.open(encoding="utf-8") as fh:
        report = validate_examples(fh, cfg, model=model, count_tokens=count_tokens, special_tokens=special_tokens)
    check_report(report, cfg, source=str(path), budget=budget)
    return report
