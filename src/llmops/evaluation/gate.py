"""Promotion gate: may a challenger replace the champion? Noise must not be able to promote a model.

Inputs are the evaluate stage's outputs: the metrics dict (``metrics.json`` shape,
``{"retrieval": {...}, "answers": {...}}``) and, optionally, per-question scores
(``{question_id: [score, ...]}``; a list holds k judge repeats and is averaged first).

Rules, each with a printed reason:

* no champion -> the challenger is promoted (first model);
* with per-question scores for both models on at least ``min_paired_examples`` shared questions, a
  paired bootstrap of the mean difference (challenger - champion) must have its lower confidence bound
  above ``margin`` -- a tie or a lucky draw on a few questions does not promote;
* without them, the point estimate must exceed the champion's by ``margin`` (and the reason says so);
* every guarded metric may not fall more than its tolerance below the champion's.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.config import GateParams

Scores = Mapping[str, Sequence[float] | float]


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reasons": self.reasons, "evidence": self.evidence}


def metric(metrics: Mapping[str, Any], dotted: str) -> float | None:
    """``metric(m, "answers.token_f1")``; None when absent."""
    group, _, name = dotted.partition(".")
    value = (metrics.get(group) or {}).get(name)
    return float(value) if isinstance(value, int | float) else None


def mean_scores(scores: Scores) -> dict[str, float]:
    """Per-question mean over k repeats (a bare float counts as one repeat)."""
    out = {}
    for qid, value in scores.items():
        values = [float(value)] if isinstance(value, int | float) else [float(v) for v in value]
        if values:
            out[str(qid)] = sum(values) / len(values)
    return out


def bootstrap_diff(
    challenger: Mapping[str, float], champion: Mapping[str, float], *, samples: int, confidence: float, seed: int = 0
) -> tuple[float, float, float, int]:
    """Paired bootstrap of mean(challenger - champion) over shared question ids: (mean, low, high, n)."""
    ids = sorted(set(challenger) & set(champion))
    diffs = [challenger[i] - champion[i] for i in ids]
    n = len(diffs)
    if n == 0:
        return 0.0, 0.0, 0.0, 0
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(diffs, k=n)) / n for _ in range(samples))
    alpha = (1 - confidence) / 2
    low = means[int(alpha * (samples - 1))]
    high = means[int((1 - alpha) * (samples - 1))]
    return sum(diffs) / n, low, high, n


def decide(
    challenger: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    cfg: GateParams | None = None,
    *,
    challenger_scores: Scores | None = None,
    champion_scores: Scores | None = None,
    seed: int = 0,
) -> GateDecision:
    """Compare challenger and champion evaluations (see module docstring)."""
    cfg = cfg or GateParams()
    if champion is None:
        return GateDecision(True, ["no champion yet: the first evaluated model becomes champion"])
    new, old = metric(challenger, cfg.primary), metric(champion, cfg.primary)
    if new is None:
        return GateDecision(False, [f"challenger has no primary metric {cfg.primary}: check the evaluate stage output"])
    ok, reasons, evidence = True, [], {"primary": cfg.primary, "challenger": new, "champion": old}
    paired_new = mean_scores(challenger_scores or {})
    paired_old = mean_scores(champion_scores or {})
    shared = len(set(paired_new) & set(paired_old))
    if challenger_scores is not None and champion_scores is not None and shared >= cfg.min_paired_examples:
        mean, low, high, n = bootstrap_diff(
            paired_new, paired_old, samples=cfg.bootstrap_samples, confidence=cfg.confidence, seed=seed
        )
        evidence.update({"paired_questions": n, "mean_diff": round(mean, 4), "ci": [round(low, 4), round(high, 4)]})
        ci = f"{cfg.confidence:.0%} CI [{low:+.4f}, {high:+.4f}] over {n} paired questions"
        if low > cfg.margin:
            reasons.append(f"{cfg.primary}: challenger - champion = {mean:+.4f}, {ci}; lower bound > margin {cfg.margin}")
        else:
            ok = False
            reasons.append(
                f"{cfg.primary}: challenger - champion = {mean:+.4f}, {ci}; lower bound <= margin {cfg.margin}: "
                "not a reliable improvement"
            )
    elif old is None:
        reasons.append(f"{cfg.primary} {new:.4f}; champion has none to compare")
    else:
        basis = (
            f"only {shared} paired questions (< {cfg.min_paired_examples})"
            if challenger_scores is not None and champion_scores is not None
            else "no per-question scores"
        )
        if new > old + cfg.margin:
            reasons.append(f"{cfg.primary} {new:.4f} > champion {old:.4f} + margin {cfg.margin} ({basis}: point estimate)")
        else:
            ok = False
            reasons.append(f"{cfg.primary} {new:.4f} <= champion {old:.4f} + margin {cfg.margin} ({basis}: point estimate)")
    for dotted, tolerance in cfg.guarded.items():
        n_val, o_val = metric(challenger, dotted), metric(champion, dotted)
        if n_val is None or o_val is None:
            reasons.append(f"{dotted}: not compared (missing on {'challenger' if n_val is None else 'champion'})")
        elif n_val < o_val - tolerance:
            ok = False
            reasons.append(f"{dotted} regressed: {n_val:.4f} < champion {o_val:.4f} - tolerance {tolerance}")
        else:
            reasons.append(f"{dotted} held: {n_val:.4f} vs champion {o_val:.4f} (tolerance {tolerance})")
    return GateDecision(ok, reasons, evidence)


def scores_from_samples(samples: Sequence[Mapping[str, Any]], field_name: str) -> dict[str, list[float]]:
    """Per-question scores from ``reports/evaluate/samples.jsonl`` rows (``{"id": ..., field_name: x | [x, ...]}``).

    Rows with a ``reference`` and an ``answer`` but no such field get token F1 computed, so the gate works
    with the evaluate stage as it is and with judge scores when an evaluator writes them.
    """
    from llmops.evaluation.answers import token_f1

    out: dict[str, list[float]] = {}
    for row in samples:
        value = row.get(field_name)
        if value is None and field_name == "token_f1" and row.get("reference") is not None:
            value = token_f1(str(row.get("answer", "")), str(row["reference"]))
        if value is None:
            continue
        values = [float(value)] if isinstance(value, int | float) else [float(v) for v in value]
        out.setdefault(str(row["id"]), []).extend(values)
    return out


def load_scores(path: Path, field_name: str) -> dict[str, list[float]]:
    """:func:`scores_from_samples` over a samples JSONL file; empty when the file does not exist."""
    import json

    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as fh:
        return scores_from_samples([json.loads(line) for line in fh if line.strip()], field_name)
