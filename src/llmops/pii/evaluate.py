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


def score(
    gold: Sequence[GoldSample], predicted: Sequence[Sequence[Span]], ignored: Sequence[str] = tuple(IGNORED_TYPES)
) -> dict[str, Any]:
    """Entity-agnostic recall/precision/F2 and a per-entity breakdown (recall by gold type, counts by predicted type)."""
    ignore = set(ignored)
    found = total = tp = fp = 0
    per_gold: dict[str, list[int]] = {}
    per_pred: dict[str, list[int]] = {}
    for sample, preds in zip(gold, predicted, strict=True):
        kept = [g for g in sample.spans if g.entity_type not in ignore]
        dropped = [g for g in sample.spans if g.entity_type in ignore]
        for g in kept:
            hit = any(_overlaps(g, p) for p in preds)
            found += hit
            total += 1
            per_gold.setdefault(g.entity_type, [0, 0])[0] += hit
            per_gold[g.entity_type][1] += 1
        for p in preds:
            if any(_overlaps(p, g) for g in kept):
                tp += 1
                per_pred.setdefault(p.entity_type, [0, 0])[0] += 1
            elif not any(_overlaps(p, g) for g in dropped):
                fp += 1
                per_pred.setdefault(p.entity_type, [0, 0])[1] += 1
    recall = found / total if total else 1.0
    precision = tp / (tp + fp) if tp + fp else 1.0
    f2 = 5 * precision * recall / (4 * precision + recall) if precision + recall else 0.0
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
        "docs": len(texts),
        "seconds": round(seconds, 2),
        "docs_per_s": round(len(texts) / seconds, 1),
    }
