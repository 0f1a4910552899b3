"""Promotion gate: may a challenger replace the champion? Noise must not be able to promote a model.

Inputs are the evaluate stage's outputs: the metrics (``metrics.json`` as
:class:`~llmops.reports.evaluation.EvaluationReport` writes it, ``{"retrieval": {...}, "answers": {...}}``) and
per-question scores (``{question_id: [score, ...]}``, from the ``gate.score_field`` column of
``reports/evaluate/samples.jsonl`` read as :class:`~llmops.reports.evaluation.SampleRow`; a list holds k judge
repeats and is averaged first). The verdict is a :class:`~llmops.reports.evaluation.GateDecision`. The
champion's scores are stored with its registry record, so only the challenger is generated each night.

Rules, each with a printed reason:

* no champion -> the challenger is promoted (only the base model ever is: it is registered first);
* fewer than ``min_paired_examples`` shared questions -> not promoted (too little evidence to see a gain);
* every shared question scores the same -> "no change" (identical answers), not promoted;
* otherwise the BCa bootstrap interval of the mean difference (challenger - champion) must have its lower
  bound above ``margin``; the evidence carries the interval, the permutation p-value, the number of ties
  and the minimum detectable effect at this sample size;
* every guarded metric may not fall more than its tolerance below the champion's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llmops.config import GateParams
from llmops.errors import ConfigError
from llmops.evaluation.paired import paired_test
from llmops.reports.evaluation import GateDecision, SampleRow, read_samples

__all__ = ["GateDecision", "check_score_field", "decide", "load_scores", "mean_scores", "metric", "scores_from_samples"]

Scores = Mapping[str, Sequence[float] | float]


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


def _paired(cfg: GateParams, new: dict[str, float], old: dict[str, float], seed: int) -> tuple[bool, str, dict[str, Any]]:
    ids = sorted(set(new) & set(old))
    test = paired_test(
        [new[i] - old[i] for i in ids],
        margin=cfg.margin,
        samples=cfg.bootstrap_samples,
        confidence=cfg.confidence,
        seed=seed,
    )
    evidence: dict[str, Any] = {
        "score_field": cfg.score_field,
        "paired_questions": test.n,
        "ties": test.ties,
        "mean_diff": round(test.mean, 4),
        "ci": [round(test.low, 4), round(test.high, 4)],
        "ci_method": "BCa bootstrap",
        "confidence": cfg.confidence,
        "p_value": round(test.p_value, 4),
        "mde": round(test.mde, 4),
    }
    stats = (
        f"{cfg.confidence:.0%} BCa CI [{test.low:+.4f}, {test.high:+.4f}] over {test.n} paired questions "
        f"({test.ties} tied), permutation p={test.p_value:.3f}, minimum detectable effect {test.mde:.4f}"
    )
    if test.no_change:
        evidence["decision"] = "no change"
        return False, f"no change: challenger and champion score the same on all {test.n} questions (identical answers)", evidence
    # Both must agree: with mostly tied questions the BCa interval of a few lucky wins is too narrow on its
    # own (3 wins among 100 ties give a lower bound > 0), while the sign-flip test sees only 2^3 outcomes.
    alpha = (1 - cfg.confidence) / 2
    if test.low > cfg.margin and test.p_value < alpha:
        evidence["decision"] = "promote"
        reason = (
            f"{cfg.score_field}: challenger - champion = {test.mean:+.4f}, {stats}; lower bound > margin {cfg.margin} "
            f"and p < {alpha:g}"
        )
        return True, reason, evidence
    evidence["decision"] = "reject"
    why = f"lower bound <= margin {cfg.margin}" if test.low <= cfg.margin else f"permutation p >= {alpha:g}"
    return (
        False,
        f"{cfg.score_field}: challenger - champion = {test.mean:+.4f}, {stats}; {why}: not a reliable improvement",
        evidence,
    )


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
        return GateDecision(True, ["no champion yet: the first evaluated model becomes champion"], {"decision": "promote"})
    new, old = metric(challenger, cfg.primary), metric(champion, cfg.primary)
    if new is None:
        return GateDecision(
            False, [f"challenger has no primary metric {cfg.primary}: check the evaluate stage output"], {"decision": "reject"}
        )
    paired_new, paired_old = mean_scores(challenger_scores or {}), mean_scores(champion_scores or {})
    shared = len(set(paired_new) & set(paired_old))
    head: dict[str, Any] = {"primary": cfg.primary, "challenger": new, "champion": old}
    if shared < cfg.min_paired_examples:
        return GateDecision(
            False,
            [
                f"not enough evidence: {shared} paired questions with {cfg.score_field} (< gate.min_paired_examples "
                f"{cfg.min_paired_examples}); evaluate both models on the gate set (evaluate.gate_questions)"
            ],
            head | {"paired_questions": shared, "decision": "reject"},
        )
    ok, reason, evidence = _paired(cfg, paired_new, paired_old, seed)
    reasons = [reason]
    for dotted, tolerance in cfg.guarded.items():
        n_val, o_val = metric(challenger, dotted), metric(champion, dotted)
        if n_val is None or o_val is None:
            reasons.append(f"{dotted}: not compared (missing on {'challenger' if n_val is None else 'champion'})")
        elif n_val < o_val - tolerance:
            ok = False
            evidence["decision"] = "reject"
            reasons.append(f"{dotted} regressed: {n_val:.4f} < champion {o_val:.4f} - tolerance {tolerance}")
        else:
            reasons.append(f"{dotted} held: {n_val:.4f} vs champion {o_val:.4f} (tolerance {tolerance})")
    return GateDecision(ok, reasons, head | evidence)


def score_fields(rows: Sequence[SampleRow]) -> list[str]:
    """Numeric per-question columns of the evaluate stage's samples (what ``gate.score_field`` may name)."""
    return sorted({k for row in rows for k in row.columns if "." in k and row.scores(k)})


def check_score_field(rows: Sequence[SampleRow], field_name: str) -> None:
    """Fail unless some answered row carries ``field_name``: a misnamed field must not gate on nothing."""
    answered = [r for r in rows if r.answer is not None]
    if answered and not any(r.columns.get(field_name) is not None for r in answered):
        raise ConfigError(
            f"gate.score_field {field_name!r} is not a per-question column of the evaluate stage's samples; "
            f"set it to one of: {', '.join(score_fields(answered)) or 'none (no answered questions)'}"
        )


def scores_from_samples(samples: Sequence[SampleRow], field_name: str) -> dict[str, list[float]]:
    """Per-question scores from ``reports/evaluate/samples.jsonl`` rows (``{"id": ..., field_name: x | [x, ...]}``);
    a missing score is skipped, never counted as 0. Raises :class:`ConfigError` when no row has the field."""
    check_score_field(samples, field_name)
    out: dict[str, list[float]] = {}
    for row in samples:
        values = row.scores(field_name)
        if values is not None:
            out.setdefault(row.id, []).extend(values)
    return out


def load_scores(path: Path, field_name: str) -> dict[str, list[float]]:
    """:func:`scores_from_samples` over a samples JSONL file (read through :class:`SampleRow`); empty when the
    file does not exist."""
    if not path.exists():
        return {}
    return scores_from_samples(read_samples(path), field_name)
