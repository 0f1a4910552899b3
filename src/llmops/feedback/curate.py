"""Curation: from joined generations + user feedback to SFT examples and DPO pairs.

Trusted by construction:

* only feedback whose key role is in ``feedback.gold_roles`` (reviewers by default) or that the operator
  imported from files (no key) can become a gold answer; a ``user`` key's ratings and corrections are
  signals (metrics, the rejected side of DPO pairs), never training targets;
* gold answers are screened (:mod:`llmops.feedback.screen`: injections, credential/payment requests,
  links, toxicity, OpenAI moderation when keyed);
* one key's share of the training set (``feedback.max_share_per_key``) is enforced by the trainset stage on
  the files it writes (:mod:`llmops.finetune.trainset`), after every filter; a DPO pair whose chosen example
  that cap dropped is dropped with it. The nightly curation therefore does not depend on the conversations
  (an append to them does not rerun it). ``base_examples`` (a count of examples no key controls) still
  applies an early cap here when given: other keys and operator-imported feedback can only dilute it;
* DPO pairs are distinct (chosen, rejected) texts, at most ``feedback.max_dpo_pairs_per_query`` a query,
  and their chosen side (``chosen_id``) is a kept SFT example.

Also dropped, each with a counted reason: empty or over-long answers, refusals rated positively, answers
with too little support in the documents they were retrieved with (a cheap, honest proxy for
"contradicts its context"), anything whose query overlaps the eval set, and duplicates / near-duplicates
(word 3-shingle Jaccard). Every item keeps the generation ids it came from.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmops.config import FeedbackParams
from llmops.feedback.log import FeedbackUpdate
from llmops.feedback.screen import Moderation, screen_pairs
from llmops.records import EvalQuestion, FeedbackEvent
from llmops.text import is_refusal, jaccard, shingles

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
    """Apply each update (latest wins) to its generation, with the key and role that gave it (an update
    from the log without a role counts as ``user``); returns events and the count of orphan updates."""
    by_id = {e.generation_id: e for e in events}
    orphans = 0
    for u in sorted(updates, key=lambda u: u.ts):
        ev = by_id.get(u.generation_id)
        if ev is None:
            orphans += 1
            continue
        change: dict[str, Any] = {"feedback_key_name": u.key_name, "feedback_role": u.role or "user"}
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
    dpo_capped: int = 0  # distinct pairs over feedback.max_dpo_pairs_per_query

    def stats(self) -> dict[str, Any]:
        return {
            "sft": len(self.sft),
            "dpo_pairs": len(self.dpo),
            "dpo_pairs_over_query_cap": self.dpo_capped,
            "dropped": dict(sorted(self.dropped.items())),
            "sft_by_key": dict(sorted(Counter(e.feedback_key_name or "(operator)" for e in self.sft).items())),
        }


def may_be_gold(ev: FeedbackEvent, cfg: FeedbackParams) -> bool:
    """Operator-imported feedback (no key, no role) or feedback from a key whose role is a gold role."""
    if ev.feedback_role is None and ev.feedback_key_name is None:
        return True
    return (ev.feedback_role or "user") in cfg.gold_roles


def key_quota(cfg: FeedbackParams, uncapped: int) -> int:
    """Most examples one key may keep: k / (uncapped + k) <= max_share_per_key."""
    share = cfg.max_share_per_key
    return math.floor(share * uncapped / (1 - share) + 1e-9)


def _order(ev: FeedbackEvent) -> str:
    # A stable pseudo-random order: which of its examples a flooding key keeps is not its choice.
    return hashlib.sha256(ev.generation_id.encode()).hexdigest()


def curate_feedback(
    events: Sequence[FeedbackEvent],
    eval_questions: Sequence[EvalQuestion],
    doc_texts: Mapping[str, str],
    cfg: FeedbackParams,
    *,
    base_examples: int | None = None,
    moderation: Moderation | None = None,
) -> CurateResult:
    """Select training material from rated generations (see module docstring). ``base_examples``: the
    training examples no API key controls, for an early per-key cap (None: the trainset stage's cap only)."""
    result = CurateResult()
    eval_shingles = [shingles(q.query) for q in eval_questions]
    eval_exact = {_norm(q.query) for q in eval_questions}
    by_query: dict[str, list[FeedbackEvent]] = defaultdict(list)
    candidates: list[tuple[FeedbackEvent, str]] = []

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
        if not may_be_gold(ev, cfg):
            result.dropped["signal_only_role"] += 1
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
        candidates.append((ev, gold))

    reasons = screen_pairs([(ev.query, gold) for ev, gold in candidates], cfg, moderation)
    kept_shingles: list[set[int]] = []
    kept: list[FeedbackEvent] = []
    for (ev, gold), reason in zip(candidates, reasons, strict=True):
        if reason is not None:
            result.dropped[reason] += 1
            continue
        sh = shingles(ev.query + " " + gold)
        if any(jaccard(sh, k) >= cfg.near_duplicate for k in kept_shingles):
            result.dropped["near_duplicate"] += 1
            continue
        kept_shingles.append(sh)
        kept.append(ev)

    over: set[int] = set()
    if base_examples is not None:
        by_key: dict[str, list[FeedbackEvent]] = defaultdict(list)
        for ev in kept:
            if ev.feedback_key_name is not None:
                by_key[ev.feedback_key_name].append(ev)
        quota = key_quota(cfg, base_examples + sum(1 for ev in kept if ev.feedback_key_name is None))
        over = {id(ev) for group in by_key.values() for ev in sorted(group, key=_order)[quota:]}
        result.dropped["over_key_share"] += len(over)
    result.sft = [ev for ev in kept if id(ev) not in over]
    result.dropped = +result.dropped  # no zero counts

    chosen_ids = {ev.generation_id for ev in result.sft}
    for group in by_query.values():
        chosen = [e for e in group if e.generation_id in chosen_ids]
        rejected = [e for e in group if e.rating == -1]
        seen: set[tuple[str, str]] = set()
        pairs = []
        for good in chosen:
            for bad in rejected:
                text = good.correction or good.answer
                key = (_norm(text), _norm(bad.answer))
                if key[0] == key[1] or key in seen:
                    continue
                seen.add(key)
                pairs.append(
                    {
                        "prompt": good.query,
                        "chosen": text,
                        "rejected": bad.answer,
                        "generation_ids": sorted({good.generation_id, bad.generation_id}),
                        "chosen_id": good.generation_id,
                    }
                )
        result.dpo += pairs[: cfg.max_dpo_pairs_per_query]
        result.dpo_capped += max(0, len(pairs) - cfg.max_dpo_pairs_per_query)
    return result
