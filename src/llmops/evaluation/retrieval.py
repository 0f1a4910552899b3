"""Document-level retrieval metrics: recall@k, MRR and nDCG@10 over ranked doc ids."""

from __future__ import annotations

import math
from collections.abc import Sequence

from llmops.evaluation.base import EvalResult, EvalSample, mean_metrics


def dedupe_ranked(doc_ids: Sequence[str]) -> list[str]:
    """Several chunks of one document collapse to its best rank."""
    seen: dict[str, None] = {}
    for d in doc_ids:
        seen.setdefault(d, None)
    return list(seen)


def query_metrics(docs: Sequence[str], gold_ids: Sequence[str], ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """recall@k (any gold doc in top k), reciprocal rank and binary nDCG@10 of one query."""
    docs, gold_set = dedupe_ranked(docs), set(gold_ids)
    ranks = [i for i, d in enumerate(docs) if d in gold_set]
    out = {f"recall@{k}": 1.0 if ranks and ranks[0] < k else 0.0 for k in ks}
    out["mrr"] = 1.0 / (ranks[0] + 1) if ranks else 0.0
    dcg = sum(1.0 / math.log2(r + 2) for r in ranks if r < 10)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(gold_set), 10)))
    out["ndcg@10"] = dcg / ideal if ideal else 0.0
    return out


def retrieval_metrics(
    ranked: Sequence[Sequence[str]], gold: Sequence[Sequence[str]], ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float | None]:
    """Mean recall@k (any gold doc in top k), MRR and binary nDCG@10 over all queries."""
    if len(ranked) != len(gold):
        raise ValueError(f"{len(ranked)} rankings for {len(gold)} gold sets")
    per_query = [query_metrics(d, g, ks) for d, g in zip(ranked, gold, strict=True)]
    metrics = mean_metrics(per_query, [*(f"recall@{k}" for k in ks), "mrr", "ndcg@10"])
    metrics["queries"] = len(ranked)
    return metrics


class RetrievalEvaluator:
    """recall@k, MRR, nDCG@10 of each sample's retrieved doc ids against its gold ids (primary: recall@5)."""

    name = "retrieval"

    def __init__(self, ks: Sequence[int] = (1, 5, 10), primary: str | None = None) -> None:
        self.ks = list(ks)
        self.primary = primary or (f"recall@{5 if 5 in self.ks else self.ks[-1]}")

    def evaluate(self, samples: Sequence[EvalSample]) -> EvalResult:
        per_example = [query_metrics(s.retrieved_doc_ids, s.gold_doc_ids, self.ks) for s in samples]
        metrics = retrieval_metrics([s.retrieved_doc_ids for s in samples], [s.gold_doc_ids for s in samples], self.ks)
        return EvalResult(self.name, metrics, self.primary, [{k: round(v, 4) for k, v in e.items()} for e in per_example])
