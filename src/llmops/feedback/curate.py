"""Curation: from joined generations + user feedback to SFT examples and DPO pairs.

Kept as SFT: human corrections (the correction is the gold answer) and positively rated answers.
Dropped, each with a counted reason: empty or over-long answers, refusals rated positively, answers
with too little support in the documents they were retrieved with (a cheap, honest proxy for
"contradicts its context": it catches unsupported answers, not subtle contradictions), anything whose
query overlaps the eval set, and duplicates / near-duplicates (word 3-shingle Jaccard).
DPO pairs: for one query, a correction or a positively rated answer (chosen) vs a negatively rated one
(rejected). Every item keeps the generation ids it came from.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmops.config import FeedbackParams
from llmops.evaluation.answers import is_refusal
from llmops.feedback.log import FeedbackUpdate
from llmops.finetune.neardup import jaccard, shingles
from llmops.records import EvalQuestion, FeedbackEvent

_WORD = re.compile(r"\w+")
_STOP = frozenset("a an the and or of to in on for is are was were be it you your i we our this that with at as by".split())


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.casefold()))


def support(answer: str, context: str) -> float:
    """Share of the answer's content words that occur in its context (1.0 when it has none)."""
    words = [w for w in _norm(answer).split() if w not in _STOP]
    if not words:
        return 1.0
    ctx = set(_norm(context).split())
    return sum(w in ctx for w in words) / len(words)


def join_feedback(events: Iterable[FeedbackEvent], updates: Iterable[FeedbackUpdate]) -> tuple[list[FeedbackEvent], int]:
    """Apply each update (latest wins) to its generation; returns events and the count of orphan updates."""
    by_id = {e.generation_id: e for e in events}
    orphans = 0
    for u in sorted(updates, key=lambda u: u.ts):
        ev = by_id.get(u.generation_id)
        if ev is None:
            orphans += 1
            continue
        change: dict[str, Any] = {}
        if u.rating is not None:
            change["rating"] = u.rating
        if u.correction:
            change["correction"] = u.correction
        by_id[u.generation_id] = ev.model_copy(update=change)
    return sorted(by_id.values(), key=lambda e: (e.ts, e.generation_id)), orphans


@dataclass
class CurateResult:
    sft: list[FeedbackEvent] = field(default_factory=list)
    dpo: list[dict[str, Any]] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)

    def stats(self) -> dict[str, Any]:
        return {"sft": len(self.sft), "dpo_pairs": len(self.dpo), "dropped": dict(sorted(self.dropped.items()))}


def curate_feedback(
    events: Sequence[FeedbackEvent],
    eval_questions: Sequence[EvalQuestion],
    doc_texts: Mapping[str, str],
    cfg: FeedbackParams,
) -> CurateResult:
    """Select training material from rated generations (see module docstring)."""
    result = CurateResult()
    eval_shingles = [shingles(q.query) for q in eval_questions]
    eval_exact = {_norm(q.query) for q in eval_questions}
    kept_shingles: list[set[int]] = []
    by_query: dict[str, list[FeedbackEvent]] = defaultdict(list)

    for ev in events:
        qn = _norm(ev.query)
        if qn in eval_exact or any(jaccard(shingles(ev.query), s) >= cfg.near_duplicate for s in eval_shingles):
            result.dropped["eval_overlap"] += 1
            continue
        by_query[qn].append(ev)
        gold = ev.correction or (ev.answer if ev.rating == 1 else None)
        if gold is None:
            result.dropped["not_positive"] += 1
            continue
        if not gold.strip():
            result.dropped["empty"] += 1
            continue
        if len(gold) > cfg.max_answer_chars:
            result.dropped["too_long"] += 1
            continue
        if not ev.correction and is_refusal(ev.answer):
            result.dropped["refusal_rated_positive"] += 1
            continue
        context = " ".join(doc_texts.get(d, "") for d in ev.retrieved_doc_ids)
        if not ev.correction and context and support(ev.answer, context) < cfg.min_support:
            result.dropped["unsupported_by_context"] += 1
            continue
        sh = shingles(ev.query + " " + gold)
        if any(jaccard(sh, k) >= cfg.near_duplicate for k in kept_shingles):
            result.dropped["near_duplicate"] += 1
            continue
        kept_shingles.append(sh)
        result.sft.append(ev)

    for group in by_query.values():
        rejected = [e for e in group if e.rating == -1]
        chosen = [e for e in group if e.correction or e.rating == 1]
        for bad in rejected:
            for good in chosen:
                result.dpo.append(
                    {
                        "prompt": good.query,
                        "chosen": good.correction or good.answer,
                        "rejected": bad.answer,
                        "generation_ids": sorted({good.generation_id, bad.generation_id}),
                    }
                )
    return result
