"""The evaluator protocol, the sample every evaluator scores, and how results combine per run.

Every evaluator takes the same :class:`EvalSample` list and returns an :class:`EvalResult`: a metrics
dict (means over samples plus counts), the name of its primary metric, and one score dict per sample so
the promotion gate can bootstrap and slices can be cut afterwards.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class EvalSample:
    """One evaluated question: what was asked, retrieved and answered, and how to slice it."""

    id: str
    query: str
    answer: str | None = None
    reference: str | None = None
    contexts: list[str] = field(default_factory=list)
    retrieved_doc_ids: list[str] = field(default_factory=list)
    gold_doc_ids: list[str] = field(default_factory=list)
    slices: dict[str, str] = field(default_factory=dict)


@dataclass
class EvalResult:
    name: str
    metrics: dict[str, float]
    primary: str
    per_example: list[dict[str, float]] = field(default_factory=list)

    @property
    def primary_value(self) -> float:
        return float(self.metrics[self.primary])


class Evaluator(Protocol):
    """Scores samples; ``name`` is the group in metrics.json (``retrieval``, ``answers``, ...)."""

    name: str

    def evaluate(self, samples: Sequence[EvalSample]) -> EvalResult: ...


def mean_metrics(per_example: Sequence[dict[str, float]], keys: Sequence[str], *, digits: int = 4) -> dict[str, float]:
    """Mean of each key over the examples that have it (a missing score is not a zero)."""
    out: dict[str, float] = {}
    for key in keys:
        values = [float(e[key]) for e in per_example if e.get(key) is not None]
        out[key] = round(sum(values) / len(values), digits) if values else 0.0
    return out


def slice_metrics(
    samples: Sequence[EvalSample], results: Sequence[EvalResult], *, min_size: int = 1
) -> dict[str, dict[str, dict[str, float]]]:
    """Primary metrics per slice: ``{"domain": {"ssa": {"answers.token_f1": 0.31, "n": 4}}}``."""
    groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, s in enumerate(samples):
        for key, value in s.slices.items():
            groups[key][value].append(i)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key, values in sorted(groups.items()):
        out[key] = {}
        for value, idx in sorted(values.items()):
            if len(idx) < min_size:
                continue
            row: dict[str, float] = {"n": len(idx)}
            for r in results:
                scored = [r.per_example[i][r.primary] for i in idx if i < len(r.per_example) and r.primary in r.per_example[i]]
                if scored:
                    row[f"{r.name}.{r.primary}"] = round(sum(scored) / len(scored), 4)
            out[key][value] = row
    return out


def combine(samples: Sequence[EvalSample], results: Sequence[EvalResult]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """metrics.json body (one group per evaluator + primaries + slices) and per-sample rows."""
    metrics: dict[str, Any] = {r.name: r.metrics for r in results}
    metrics["primary"] = {r.name: r.primary for r in results}
    metrics["slices"] = slice_metrics(samples, results)
    rows = []
    for i, s in enumerate(samples):
        row: dict[str, Any] = {"id": s.id, "query": s.query, "answer": s.answer, "reference": s.reference, **s.slices}
        for r in results:
            if i < len(r.per_example):
                row.update({f"{r.name}.{k}": v for k, v in r.per_example[i].items()})
        rows.append(row)
    return metrics, rows
