"""Evaluation on a gold file in presidio-research format, entity-agnostic by overlap.

A gold span counts as found when any predicted span overlaps it; a predicted span is correct when it
overlaps any gold span. Gold types that are not personal data for us are ignored, together with the
predictions that overlap only them (see :data:`IGNORED_TYPES`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.errors import DataContractError
from llmops.pii.spans import Span

# Gold types we do not redact, and why (also printed with every evaluation).
IGNORED_TYPES: dict[str, str] = {
    "TITLE": "job titles and honorifics (Mr., 'X-ray technician') identify no one",
    "NRP": "nationality/religion/political group words are kept: support text needs them and they identify no one",
    "ORGANIZATION": "company names are what support conversations are about (our own brands, merchants, banks)",
    "DATE_TIME": "dates of ordinary events (orders, deliveries, history) must stay; dates of birth are redacted "
    "as DATE_OF_BIRTH by context",
}

STRUCTURED = ("CREDIT_CARD", "IBAN_CODE", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "IP_ADDRESS")


@dataclass(frozen=True)
class GoldSample:
    text: str
    spans: tuple[Span, ...]


def load_gold(path: str | Path) -> list[GoldSample]:
    """Read a JSON list or JSONL of ``{full_text, spans: [{entity_type, start_position, end_position}]}``."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError) as exc:
        raise DataContractError(f"gold file {path} cannot be read as UTF-8 text: {exc}") from exc
    try:
        stripped = raw.lstrip()
        items = json.loads(stripped) if stripped.startswith("[") else [json.loads(x) for x in raw.splitlines() if x.strip()]
        samples = [
            GoldSample(
                item["full_text"],
                tuple(Span(s["entity_type"], int(s["start_position"]), int(s["end_position"]), 1.0) for s in item["spans"]),
            )
            for item in items
        ]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DataContractError(
            f"gold file {path} is not presidio-research format (JSON list or JSONL of "
            f"{{full_text, spans: [{{entity_type, start_position, end_position}}]}}): {exc!r}"
        ) from exc
    return samples


def _overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def _judge(sample: GoldSample, preds: Sequence[Span], ignore: set[str]) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """One document's gold spans as (type, found) and its counted predictions as (type, correct); a prediction
    that overlaps only ignored gold spans is not counted."""
    kept = [g for g in sample.spans if g.entity_type not in ignore]
    dropped = [g for g in sample.spans if g.entity_type in ignore]
    gold = [(g.entity_type, any(_overlaps(g, p) for p in preds)) for g in kept]
    judged = []
    for p in preds:
        if any(_overlaps(p, g) for g in kept):
            judged.append((p.entity_type, True))
        elif not any(_overlaps(p, g) for g in dropped):
            judged.append((p.entity_type, False))
    return gold, judged


def doc_counts(
    gold: Sequence[GoldSample], predicted: Sequence[Sequence[Span]], ignored: Sequence[str] = tuple(IGNORED_TYPES)
) -> list[tuple[int, int, int, int]]:
    """Per document: (gold spans found, gold spans, correct predictions, false positives), the unit of
    :func:`paired_bootstrap`."""
    ignore = set(ignored)
    out = []
    for sample, preds in zip(gold, predicted, strict=True):
        spans, judged = _judge(sample, preds, ignore)
        tp = sum(ok for _, ok in judged)
        out.append((sum(hit for _, hit in spans), len(spans), tp, len(judged) - tp))
    return out


def _metrics(found: float, total: float, tp: float, fp: float) -> tuple[float, float, float]:
    recall = found / total if total else 1.0
    precision = tp / (tp + fp) if tp + fp else 1.0
    f2 = 5 * precision * recall / (4 * precision + recall) if precision + recall else 0.0
    return recall, precision, f2


def score(
    gold: Sequence[GoldSample], predicted: Sequence[Sequence[Span]], ignored: Sequence[str] = tuple(IGNORED_TYPES)
) -> dict[str, Any]:
    """Entity-agnostic recall/precision/F2 and a per-entity breakdown (recall by gold type, counts by predicted type)."""
    ignore = set(ignored)
    found = total = tp = fp = 0
    per_gold: dict[str, list[int]] = {}
    per_pred: dict[str, list[int]] = {}
    for sample, preds in zip(gold, predicted, strict=True):
        spans, judged = _judge(sample, preds, ignore)
        for entity, hit in spans:
            found += hit
            total += 1
            per_gold.setdefault(entity, [0, 0])[0] += hit
            per_gold[entity][1] += 1
        for entity, ok in judged:
            tp += ok
            fp += not ok
            per_pred.setdefault(entity, [0, 0])[0 if ok else 1] += 1
    recall, precision, f2 = _metrics(found, total, tp, fp)
    structured = [per_gold[t] for t in STRUCTURED if t in per_gold]
    return {
        "recall": round(recall, 4),
        "precision": round(precision, 4),
        "f2": round(f2, 4),
        "structured_recall": round(sum(h for h, _ in structured) / max(1, sum(n for _, n in structured)), 4),
        "gold_spans": total,
        "per_entity": {t: {"recall": round(h / n, 4), "found": h, "gold": n} for t, (h, n) in sorted(per_gold.items())},
        "predicted": {t: {"correct": c, "false_positive": f} for t, (c, f) in sorted(per_pred.items())},
        "ignored_types": {t: IGNORED_TYPES.get(t, "left out for this gold set") for t in ignored},
    }


def paired_bootstrap(
    a: Sequence[tuple[int, int, int, int]], b: Sequence[tuple[int, int, int, int]], samples: int = 4000, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Recall, precision and F2 of ``a`` minus ``b`` (per-document counts of the same documents, from
    :func:`doc_counts`), with a 95% interval from resampling the documents together."""
    import numpy as np

    ca, cb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if ca.shape != cb.shape:
        raise ValueError("paired_bootstrap needs the counts of the same documents on both sides")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(ca), size=(samples, len(ca)))

    def metrics(c: Any) -> Any:  # (..., 4) sums -> recall, precision, F2 arrays
        found, total, tp, fp = (c[..., i] for i in range(4))
        recall = np.where(total > 0, found / np.maximum(total, 1), 1.0)
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 1.0)
        f2 = np.where(precision + recall > 0, 5 * precision * recall / np.maximum(4 * precision + recall, 1e-12), 0.0)
        return recall, precision, f2

    point = [x - y for x, y in zip(metrics(ca.sum(0)), metrics(cb.sum(0)), strict=True)]
    boot = [x - y for x, y in zip(metrics(ca[idx].sum(1)), metrics(cb[idx].sum(1)), strict=True)]
    return {
        name: {
            "delta": round(float(p), 4),
            "low": round(float(np.quantile(d, 0.025)), 4),
            "high": round(float(np.quantile(d, 0.975)), 4),
        }
        for name, p, d in zip(("recall", "precision", "f2"), point, boot, strict=True)
    }


def evaluate(
    gold: Sequence[GoldSample],
    detect: Callable[[list[str]], list[list[Span]]],
    ignored: Sequence[str] = tuple(IGNORED_TYPES),
) -> dict[str, Any]:
    """Run ``detect`` over the gold texts (timed) and score it (``ignored``: gold types left out, see :func:`score`)."""
    texts = [g.text for g in gold]
    start = time.perf_counter()
    predicted = detect(texts)
    seconds = time.perf_counter() - start
    return {
        **score(gold, predicted, ignored),
        "doc_counts": doc_counts(gold, predicted, ignored),
        "docs": len(texts),
        "seconds": round(seconds, 2),
        "docs_per_s": round(len(texts) / seconds, 1),
    }
