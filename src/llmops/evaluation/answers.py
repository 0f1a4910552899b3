"""Reference answer metrics (token F1, SQuAD-style) and simple answer heuristics."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_REFUSAL = re.compile(r"\b(i don't know|i do not know|i'm sorry|i am sorry|cannot help|can't help)\b", re.I)


def _tokens(text: str) -> list[str]:
    text = text.casefold().translate(str.maketrans("", "", string.punctuation))
    return _ARTICLES.sub(" ", text).split()


def is_refusal(text: str) -> bool:
    """Does the answer decline ("I'm sorry", "I don't know", ...)?"""
    return bool(_REFUSAL.search(text))


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall after SQuAD normalisation."""
    pred, ref = _tokens(prediction), _tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    p, r = common / len(pred), common / len(ref)
    return 2 * p * r / (p + r)


def answer_metrics(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    n = len(predictions)
    if n == 0:
        return {"token_f1": 0.0, "answer_words": 0.0, "empty_rate": 0.0, "refusal_rate": 0.0, "answers": 0}
    return {
        "token_f1": round(sum(token_f1(p, r) for p, r in zip(predictions, references, strict=True)) / n, 4),
        "answer_words": round(sum(len(p.split()) for p in predictions) / n, 2),
        "empty_rate": round(sum(1 for p in predictions if not p.strip()) / n, 4),
        "refusal_rate": round(sum(1 for p in predictions if is_refusal(p)) / n, 4),
        "answers": n,
    }
