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
    metrics: dict[str, float | None]  # None: could not be computed on this run (reported as missing)
    primary: str
    per_example: list[dict[str, float]] = field(default_factory=list)

    @property
    def primary_value(self) -> float | None:
        """The primary metric's mean, None when no sample could be scored."""
        value = self.metrics.get(self.primary)
        return float(value) if value is not None else None


class Evaluator(Protocol):
    """Scores samples; ``name`` is the group in metrics.json (``retrieval``, ``answers``, ...)."""

    name: str

    def evaluate(self, samples: Sequence[EvalSample]) -> EvalResult: ...


def mean_metrics(per_example: Sequence[dict[str, float]], keys: Sequence[str], *, digits: int = 4) -> dict[str, float | None]:
    """Mean of each key over the examples that have it; None when no example has it (a metric the run
    could not compute is missing, never 0: :func:`combine` lists it under ``missing``)."""
    out: dict[str, float | None] = {}
    for key in keys:
        values = [float(e[key]) for e in per_example if e.get(key) is not None]
        out[key] = round(sum(values) / len(values), digits) if values else None
    return out


def missing_metrics(results: Sequence[EvalResult]) -> list[str]:
    """``group.metric`` names an evaluator could compute for no sample (e.g. every judge reply unparsed)."""
    return [f"{r.name}.{k}" for r in results for k, v in r.metrics.items() if v is None]


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
    metrics: dict[str, Any] = {r.name: {k: v for k, v in r.metrics.items() if v is not None} for r in results}
    metrics["primary"] = {r.name: r.primary for r in results}
    metrics["missing"] = missing_metrics(results)
    metrics["slices"] = slice_metrics(samples, results)
    rows = []
    for i, s in enumerate(samples):
        row: dict[str, Any] = {"id": s.id, "query": s.query, "answer": s.answer, "reference": s.reference, **s.slices}
        for r in results:
            if i < len(r.per_example):
                row.update({f"{r.name}.{k}": v for k, v in r.per_example[i].items()})
        rows.append(row)
    return metrics, rows
