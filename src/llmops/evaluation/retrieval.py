"""Document-level retrieval metrics: recall@k, MRR and nDCG@10 over ranked doc ids."""

from __future__ import annotations

import math
from collections.abc import Sequence


def dedupe_ranked(doc_ids: Sequence[str]) -> list[str]:
    """Several chunks of one document collapse to its best rank."""
    seen: dict[str, None] = {}
    for d in doc_ids:
        seen.setdefault(d, None)
    return list(seen)


def retrieval_metrics(
    ranked: Sequence[Sequence[str]], gold: Sequence[Sequence[str]], ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """Mean recall@k (any gold doc in top k), MRR and binary nDCG@10 over all queries."""
    if len(ranked) != len(gold):
        raise ValueError(f"{len(ranked)} rankings for {len(gold)} gold sets")
    n = len(ranked)
    if n == 0:
        return {**{f"recall@{k}": 0.0 for k in ks}, "mrr": 0.0, "ndcg@10": 0.0, "queries": 0}
    hits = {k: 0.0 for k in ks}
    mrr = ndcg = 0.0
    for docs, gold_ids in zip(ranked, gold, strict=True):
        docs, gold_set = dedupe_ranked(docs), set(gold_ids)
        ranks = [i for i, d in enumerate(docs) if d in gold_set]
        for k in ks:
            hits[k] += 1.0 if ranks and ranks[0] < k else 0.0
        if ranks:
            mrr += 1.0 / (ranks[0] + 1)
        dcg = sum(1.0 / math.log2(r + 2) for r in ranks if r < 10)
        ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(gold_set), 10)))
        ndcg += dcg / ideal if ideal else 0.0
    metrics = {f"recall@{k}": round(hits[k] / n, 4) for k in ks}
    metrics.update({"mrr": round(mrr / n, 4), "ndcg@10": round(ndcg / n, 4), "queries": n})
    return metrics
