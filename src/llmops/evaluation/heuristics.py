"""Answer heuristics that need no reference: length, refusals, citing a retrieved document, residual PII."""

from __future__ import annotations

import re
from collections.abc import Sequence

from llmops.config import RedactParams
from llmops.evaluation.base import EvalResult, EvalSample, mean_metrics
from llmops.pii.scan import Scanner
from llmops.text import is_refusal

_KEYS = ["answer_words", "empty_rate", "refusal_rate", "cites_document_rate", "residual_pii_rate"]
_CITATION = re.compile(r"\[(?:\d+|doc[^\]]*)\]|\bsource:", re.I)


def residual_pii(texts: Sequence[str], scanner: Scanner | None = None) -> list[list[str]]:
    """Entity types of structured PII in each text, found by the pipeline's own leak scan (same detectors,
    checksums and threshold as the gate before the training set and the index are published)."""
    scanner = scanner or Scanner(RedactParams())
    found: list[set[str]] = [set() for _ in texts]
    for f in scanner.scan((str(i), t) for i, t in enumerate(texts)):
        found[int(f.location)].add(f.entity_type)
    return [sorted(x) for x in found]


def doc_title(doc_id: str) -> str:
    """'Borrower Defense | Federal Student Aid#1_0' -> 'borrower defense' (the page title before site and chunk)."""
    return doc_id.split("#", 1)[0].split("|", 1)[0].strip().casefold()


def cites_document(answer: str, retrieved_doc_ids: Sequence[str]) -> bool:
    """A bracketed citation, or the title of a retrieved document named in the answer."""
    if _CITATION.search(answer):
        return True
    low = answer.casefold()
    return any(len(t) >= 4 and t in low for t in map(doc_title, retrieved_doc_ids))


class HeuristicsEvaluator:
    """Answer length, empty and refusal rate, share citing a retrieved doc, residual PII rate (primary: refusal)."""

    name = "heuristics"

    def __init__(self, scanner: Scanner | None = None) -> None:
        self.scanner = scanner

    def evaluate(self, samples: Sequence[EvalSample]) -> EvalResult:
        per_example: list[dict[str, float]] = []
        pii = iter(residual_pii([s.answer for s in samples if s.answer is not None], self.scanner))
        for s in samples:
            if s.answer is None:
                per_example.append({})
                continue
            # Per example each rate is 0 or 1, so slices and bootstraps average them like the run does.
            per_example.append(
                {
                    "answer_words": float(len(s.answer.split())),
                    "empty_rate": float(not s.answer.strip()),
                    "refusal_rate": float(is_refusal(s.answer)),
                    "cites_document_rate": float(cites_document(s.answer, s.retrieved_doc_ids)),
                    "residual_pii_rate": float(bool(next(pii))),
                }
            )
        metrics = mean_metrics(per_example, _KEYS)
        metrics["answers"] = sum(1 for e in per_example if e)
        return EvalResult(self.name, metrics, "refusal_rate", per_example)
