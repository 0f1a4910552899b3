"""Build chat-format fine-tuning data from redacted conversations and production feedback.

* conversations: consecutive turns of one role are merged; the example must end with an agent answer;
* feedback: a positively rated answer, or a human correction (the correction is the gold answer);
  negatively rated answers without a correction are left out;
* eval questions never enter training (decontamination on the normalised query);
* exact and near duplicates (MinHash over word 3-shingles, :mod:`llmops.finetune.neardup`) are removed;
  answers too short, too long or mostly non-letters are dropped; every drop is counted by reason;
* the train/validation split is by conversation/generation id, so turns of one conversation never land
  on both sides.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.config import BaseParams, TrainsetParams
from llmops.records import ChatMessage, Conversation, EvalQuestion, FeedbackEvent, TrainingExample


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _unit(key: str, seed: int) -> float:
    """A stable pseudo-random number in [0, 1) for ``key`` (split assignment)."""
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:12], 16) / 16**12


@dataclass
class TrainsetResult:
    train: list[TrainingExample] = field(default_factory=list)
    validation: list[TrainingExample] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def provenance(self) -> list[dict[str, Any]]:
        """One row per example, in file order: split, source and the id it came from."""
        return [
            {
                "split": split,
                "source": e.source,
                "group_id": e.group_id,
                "created_at": e.created_at.isoformat() if e.created_at else None,
            }
            for split, examples in (("train", self.train), ("validation", self.validation))
            for e in examples
        ]

    def stats(self) -> dict[str, Any]:
        by_source = Counter(e.source for e in self.train + self.validation)
        return {
            "train": len(self.train),
            "validation": len(self.validation),
            "by_source": dict(sorted(by_source.items())),
            "skipped": dict(sorted(self.skipped.items())),
        }


def conversation_example(conv: Conversation, system_prompt: str) -> TrainingExample | None:
    messages = [ChatMessage(role="system", content=system_prompt)]
    for turn in conv.turns:
        role = "user" if turn.role == "customer" else "assistant"
        if messages[-1].role == role:
            messages[-1] = ChatMessage(role=role, content=f"{messages[-1].content}\n{turn.text}")
        elif role == "assistant" and messages[-1].role == "system":
            continue  # an agent opening the conversation has nothing to answer
        else:
            messages.append(ChatMessage(role=role, content=turn.text))
    while messages and messages[-1].role != "assistant":
        messages.pop()
    if len(messages) < 3:
        return None
    return TrainingExample(messages=messages, source="conversation", group_id=conv.conversation_id, created_at=conv.created_at)


def feedback_example(ev: FeedbackEvent, system_prompt: str) -> TrainingExample | None:
    if ev.correction:
        answer, source = ev.correction, "correction"
    elif ev.rating == 1:
        answer, source = ev.answer, "rated_positive"
    else:
        return None
    return TrainingExample(
        messages=[
            ChatMessage(role="system", content=system_prompt),
            ChatMessage(role="user", content=ev.query),
            ChatMessage(role="assistant", content=answer),
        ],
        source=source,
        group_id=ev.generation_id,
        created_at=ev.ts,
    )


def build_trainset(
    conversations: Sequence[Conversation],
    feedback: Sequence[FeedbackEvent],
    eval_questions: Sequence[EvalQuestion],
    cfg: TrainsetParams,
    base: BaseParams,
) -> TrainsetResult:
    """Turn cleaned, redacted data into train/validation examples (see module docstring)."""
    result = TrainsetResult()
    eval_queries = {_norm(q.query) for q in eval_questions}
    candidates: list[TrainingExample] = []
    for conv in conversations:
        ex = conversation_example(conv, base.system_prompt)
        if ex is None:
            result.skipped["no_agent_answer"] += 1
        else:
            candidates.append(ex)
    if cfg.include_feedback:
        for ev in feedback:
            ex = feedback_example(ev, base.system_prompt)
            if ex is None:
                result.skipped["feedback_not_positive"] += 1
            else:
                candidates.append(ex)

    from llmops.finetune.neardup import near_duplicates, shingles

    eval_shingles = [shingles(q) for q in eval_queries]
    seen: set[str] = set()
    kept: list[TrainingExample] = []
    for ex in candidates:
        users = [m.content for m in ex.messages if m.role == "user"]
        answer = [m.content for m in ex.messages if m.role == "assistant"][-1]
        if any(_norm(u) in eval_queries for u in users) or _near_eval(users, eval_shingles, cfg.near_dup_threshold):
            result.skipped["eval_overlap"] += 1
            continue
        if len(answer) < cfg.min_answer_chars:
            result.skipped["answer_too_short"] += 1
            continue
        if len(answer) > cfg.max_answer_chars:
            result.skipped["answer_too_long"] += 1
            continue
        if sum(c.isalpha() for c in answer) < cfg.min_alpha_share * len(answer.replace(" ", "")):
            result.skipped["answer_not_text"] += 1
            continue
        key = hashlib.sha256("\x1e".join(_norm(m.content) for m in ex.messages[1:]).encode()).hexdigest()
        if key in seen:
            result.skipped["duplicate"] += 1
            continue
        seen.add(key)
        kept.append(ex)
    if cfg.near_dup_threshold > 0:
        texts = ["\n".join(m.content for m in ex.messages[1:]) for ex in kept]
        dropped = near_duplicates(texts, cfg.near_dup_threshold, seed=base.seed)
        if dropped:
            result.skipped["near_duplicate"] += len(dropped)
        kept = [ex for i, ex in enumerate(kept) if i not in dropped]
    for ex in kept:
        if _unit(ex.group_id, base.seed) < cfg.validation_share:
            result.validation.append(ex)
        else:
            result.train.append(ex)
    if len(result.train) > cfg.max_examples:
        result.skipped["over_max_examples"] += len(result.train) - cfg.max_examples
        result.train = sorted(result.train, key=lambda e: _unit(e.group_id + "/order", base.seed))[: cfg.max_examples]
    return result


def _near_eval(users: list[str], eval_shingles: list[set[int]], threshold: float) -> bool:
    """Is a user turn a near copy of an eval question? (Only question-sized turns can be.)"""
    if threshold <= 0 or not eval_shingles:
        return False
    from llmops.finetune.neardup import jaccard, shingles

    for text in users:
        if len(text) > 1000:
            continue
        s = shingles(text)
        if any(jaccard(s, e) >= threshold for e in eval_shingles):
            return True
    return False


def input_revision(paths: Sequence[str | Path]) -> dict[str, Any]:
    """md5 of each input file (as DVC computes it) and one revision over all: what this build was made from."""
    md5s = {str(p): hashlib.md5(Path(p).read_bytes()).hexdigest() for p in paths}
    combined = hashlib.sha256("".join(f"{k}:{v}\n" for k, v in sorted(md5s.items())).encode()).hexdigest()[:12]
    return {"data_rev": combined, "inputs": md5s}


def read_chat_jsonl(path: str | Path) -> list[TrainingExample]:
    """Read an OpenAI-format chat JSONL (``{"messages": [...]}`` lines) written by :func:`build_trainset`."""
    out = []
    with Path(path).open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if line.strip():
                messages = [ChatMessage.model_validate(m) for m in json.loads(line)["messages"]]
                out.append(TrainingExample(messages=messages, source=str(path), group_id=str(i)))
    return out
