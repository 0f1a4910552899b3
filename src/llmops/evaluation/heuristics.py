"""Answer heuristics that need no reference: length, refusals, citing a retrieved document, residual PII."""

from __future__ import annotations

import re
from collections.abc import Sequence

from llmops.evaluation.answers import _REFUSAL
from llmops.evaluation.base import EvalResult, EvalSample, mean_metrics

# Structured identifiers a redacted pipeline must never emit (names need NER: see llmops.pii for that).
PII_PATTERNS = {
    "email": re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"),
    "phone": re.compile(r"(?<!\w)(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]\d{3}[ .-]\d{4}\b"),
    "credit_card": re.compile(r"\b(?:\d[ -]?){13,16}\b"),
    "us_ssn": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    "ip_address": re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"),
}
_KEYS = ["answer_words", "empty_rate", "refusal_rate", "cites_document_rate", "residual_pii_rate"]
_CITATION = re.compile(r"\[(?:\d+|doc[^\]]*)\]|\bsource:", re.I)


def residual_pii(text: str) -> list[str]:
    """Names of the PII patterns found in ``text``."""
    return [name for name, pattern in PII_PATTERNS.items() if pattern.search(text)]


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

    def evaluate(self, samples: Sequence[EvalSample]) -> EvalResult:
        per_example: list[dict[str, float]] = []
        for s in samples:
            if s.answer is None:
                per_example.append({})
                continue
            # Per example each rate is 0 or 1, so slices and bootstraps average them like the run does.
            per_example.append(
                {
                    "answer_words": float(len(s.answer.split())),
                    "empty_rate": float(not s.answer.strip()),
                    "refusal_rate": float(bool(_REFUSAL.search(s.answer))),
                    "cites_document_rate": float(cites_document(s.answer, s.retrieved_doc_ids)),
                    "residual_pii_rate": float(bool(residual_pii(s.answer))),
                }
            )
        metrics = mean_metrics(per_example, _KEYS)
        metrics["answers"] = sum(1 for e in per_example if e)
        return EvalResult(self.name, metrics, "refusal_rate", per_example)
