"""Groundedness: the share of an answer's content supported by the retrieved context.

Each answer sentence is embedded with the index embedder and compared with every context sentence; a
sentence is supported when its best cosine similarity reaches ``threshold``. The score weights
sentences by their word count, so a long unsupported claim costs more than a short greeting.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from llmops.evaluation.base import EvalResult, EvalSample, mean_metrics
from llmops.index.embed import Embedder

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def sentences(text: str, *, min_words: int = 2) -> list[str]:
    """Sentences with at least ``min_words`` words."""
    return [s.strip() for s in _SENTENCE.split(text) if len(s.split()) >= min_words]


class GroundednessEvaluator:
    """Word-weighted share of answer sentences supported by a context sentence (cosine >= threshold)."""

    name = "groundedness"

    def __init__(self, embedder: Embedder, *, threshold: float = 0.6) -> None:
        self.embedder = embedder
        self.threshold = threshold

    def evaluate(self, samples: Sequence[EvalSample]) -> EvalResult:
        import numpy as np

        answer_sents = [sentences(s.answer or "") for s in samples]
        context_sents = [[c for ctx in s.contexts for c in sentences(ctx)] for s in samples]
        flat = [x for group in answer_sents + context_sents for x in group]
        vectors = np.asarray(self.embedder.embed(flat), dtype=np.float32) if flat else np.zeros((0, 1), dtype=np.float32)
        if len(vectors):
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        offset, per_example = 0, list[dict[str, float]]()
        spans = []
        for group in answer_sents + context_sents:
            spans.append((offset, offset + len(group)))
            offset += len(group)
        n = len(samples)
        for i, s in enumerate(samples):
            if s.answer is None:
                per_example.append({})
                continue
            (a0, a1), (c0, c1) = spans[i], spans[n + i]
            if a1 == a0:  # nothing to check: an empty or one-word answer claims nothing
                per_example.append({"groundedness": 1.0, "supported_sentences": 0.0, "sentences": 0.0})
                continue
            if c1 == c0:
                best = np.zeros(a1 - a0)
            else:
                best = (vectors[a0:a1] @ vectors[c0:c1].T).max(axis=1)
            weights = np.array([len(x.split()) for x in answer_sents[i]], dtype=float)
            supported = best >= self.threshold
            per_example.append(
                {
                    "groundedness": round(float(weights[supported].sum() / weights.sum()), 4),
                    "supported_sentences": float(supported.sum()),
                    "sentences": float(len(supported)),
                }
            )
        metrics = mean_metrics(per_example, ["groundedness"])
        metrics["answers"] = sum(1 for e in per_example if e)
        metrics["threshold"] = self.threshold
        return EvalResult(self.name, metrics, "groundedness", per_example)
