"""The frozen gate set: held-out questions with reference answers that every challenger is judged on.

The gate can only see a realistic gain when it pairs enough questions (with the per-question spread of
answer scores, ~100 questions resolve a few points of similarity; 6 resolve nothing), and it only measures
generalisation when none of those questions -- nor their dialogues, nor near copies -- were trained on.
:func:`build_gateset` selects the questions once per source version (stage ``gateset``; DVC versions the
output); :func:`gate_dialogue_ids` and :func:`overlaps_gateset` are what the training side excludes by.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from llmops.config import GatesetParams
from llmops.records import EvalQuestion
from llmops.text import jaccard, near_duplicates, shingles


def dialogue_id(question_id: str) -> str:
    """doc2dial question ids are ``<dialogue id>_<turn>``: the dialogue a question was asked in."""
    head, sep, turn = question_id.rpartition("_")
    return head if sep and turn.isdigit() else question_id


def gate_dialogue_ids(questions: Iterable[EvalQuestion]) -> set[str]:
    """Dialogue ids of the gate set: conversations with these ids must never be trained on."""
    return {dialogue_id(q.id) for q in questions}


@dataclass
class GatesetResult:
    questions: list[EvalQuestion]
    dropped: dict[str, int] = field(default_factory=dict)

    def stats(self) -> dict[str, int | dict[str, int]]:
        return {
            "questions": len(self.questions),
            "dialogues": len(gate_dialogue_ids(self.questions)),
            "dropped": self.dropped,
        }


def build_gateset(source: Sequence[EvalQuestion], cfg: GatesetParams) -> GatesetResult:
    """Questions with a usable reference answer, one per dialogue, near-duplicate questions dropped (first kept),
    in source order, capped at ``cfg.max_questions`` (0 = all)."""
    dropped = {"no_answer": 0, "short_answer": 0, "same_dialogue": 0, "near_duplicate": 0, "over_cap": 0}
    kept: list[EvalQuestion] = []
    seen: set[str] = set()
    for q in source:
        answer = (q.answer or "").strip()
        if not answer:
            dropped["no_answer"] += 1
        elif len(answer) < cfg.min_answer_chars:
            dropped["short_answer"] += 1
        elif dialogue_id(q.id) in seen:
            dropped["same_dialogue"] += 1  # later turns of one dialogue are not independent questions
        else:
            seen.add(dialogue_id(q.id))
            kept.append(q)
    if cfg.near_duplicate > 0:
        dups = near_duplicates([q.query for q in kept], cfg.near_duplicate)
        dropped["near_duplicate"] = len(dups)
        kept = [q for i, q in enumerate(kept) if i not in dups]
    if cfg.max_questions and len(kept) > cfg.max_questions:
        dropped["over_cap"] = len(kept) - cfg.max_questions
        kept = kept[: cfg.max_questions]
    return GatesetResult(kept, dropped)


def overlaps_gateset(texts: Sequence[str], gate: Sequence[EvalQuestion], threshold: float) -> list[bool]:
    """Per text: is it (after casefolding) a gate question or a near copy of one (word 3-shingle Jaccard)?"""
    exact = {" ".join(q.query.casefold().split()) for q in gate}
    gate_sets = [shingles(q.query) for q in gate]
    out = []
    for text in texts:
        norm = " ".join(text.casefold().split())
        s = shingles(text)
        out.append(norm in exact or (threshold > 0 and any(jaccard(s, g) >= threshold for g in gate_sets)))
    return out
