"""Reference answer metrics: token F1 (SQuAD-style), ROUGE-L and smoothed sentence BLEU."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence

from llmops.evaluation.base import EvalResult, EvalSample, mean_metrics
from llmops.index.embed import Embedder
from llmops.text import is_refusal

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _tokens(text: str) -> list[str]:
    text = text.casefold().translate(str.maketrans("", "", string.punctuation))
    return _ARTICLES.sub(" ", text).split()


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


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1: longest common subsequence of normalised tokens."""
    pred, ref = _tokens(prediction), _tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    lcs = _lcs(pred, ref)
    if lcs == 0:
        return 0.0
    p, r = lcs / len(pred), lcs / len(ref)
    return 2 * p * r / (p + r)


def bleu(prediction: str, reference: str, max_n: int = 4) -> float:
    """Sentence BLEU-4 with add-one smoothing for n > 1 (Lin & Och 2004) and the brevity penalty."""
    pred, ref = _tokens(prediction), _tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    log_p = 0.0
    for n in range(1, max_n + 1):
        grams = Counter(tuple(pred[i : i + n]) for i in range(len(pred) - n + 1))
        ref_grams = Counter(tuple(ref[i : i + n]) for i in range(len(ref) - n + 1))
        match, total = sum((grams & ref_grams).values()), max(len(pred) - n + 1, 0)
        if n == 1 and match == 0:
            return 0.0
        smooth = 0 if n == 1 else 1
        log_p += math.log((match + smooth) / (total + smooth)) / max_n
    bp = 1.0 if len(pred) > len(ref) else math.exp(1 - len(ref) / len(pred))
    return bp * math.exp(log_p)


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


def semantic_similarity(embedder: Embedder, predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    """Cosine similarity of each answer's and its reference's embeddings (the project's embedder), in [-1, 1];
    an empty answer scores 0 (it says nothing)."""
    import numpy as np

    if not predictions:
        return []
    vectors = np.asarray(embedder.embed([*predictions, *references]), dtype=np.float64)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    n = len(predictions)
    sims = (vectors[:n] * vectors[n:]).sum(axis=1)
    return [float(x) if p.strip() else 0.0 for x, p in zip(sims, predictions, strict=True)]


class ReferenceEvaluator:
    """Against the reference answer: token F1, ROUGE-L, BLEU and, with an embedder, semantic similarity
    (answer-reference cosine; the primary then, as it separates models with less noise than token F1:
    see README "Evaluation"). Samples without a reference are skipped."""

    name = "answers"

    def __init__(self, embedder: Embedder | None = None) -> None:
        self.embedder = embedder

    def evaluate(self, samples: Sequence[EvalSample]) -> EvalResult:
        per_example: list[dict[str, float]] = []
        scored = [s for s in samples if s.answer is not None and s.reference is not None]
        sims = (
            semantic_similarity(self.embedder, [s.answer or "" for s in scored], [s.reference or "" for s in scored])
            if self.embedder is not None
            else []
        )
        by_id = dict(zip((s.id for s in scored), sims, strict=False))
        for s in samples:
            if s.answer is None or s.reference is None:
                per_example.append({})
                continue
            row = {
                "token_f1": round(token_f1(s.answer, s.reference), 4),
                "rouge_l": round(rouge_l(s.answer, s.reference), 4),
                "bleu": round(bleu(s.answer, s.reference), 4),
            }
            if s.id in by_id:
                row["semantic_similarity"] = round(by_id[s.id], 4)
            per_example.append(row)
        keys = ["token_f1", "rouge_l", "bleu", *(["semantic_similarity"] if self.embedder is not None else [])]
        metrics = mean_metrics(per_example, keys)
        metrics["answers"] = sum(1 for e in per_example if e)
        return EvalResult(self.name, metrics, "semantic_similarity" if self.embedder is not None else "token_f1", per_example)
