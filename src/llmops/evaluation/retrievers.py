"""Retrieval evaluation of one index version: the configured retriever, plus dense and BM25 alone.

Both sides are searched once per question; dense, BM25 and hybrid figures come from the same rankings,
so the comparison is exact and costs one embedding call per question.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmops.config import IndexParams
from llmops.errors import EmptyDatasetError, IndexStateError
from llmops.evaluation.retrieval import retrieval_metrics
from llmops.index.embed import Embedder
from llmops.index.hybrid import RETRIEVERS, HybridRetriever
from llmops.index.refresh import refresh_index
from llmops.index.versions import serving_collection
from llmops.records import Document, EvalQuestion

KS = (1, 5, 10)


def evaluate_retrievers(questions: Sequence[EvalQuestion], retriever: HybridRetriever, ks: Sequence[int] = KS) -> dict[str, Any]:
    """``{recall@k..., mrr, ndcg@10}`` of ``retriever.cfg.retriever`` at top level, and under ``dense``,
    ``bm25`` and ``hybrid`` for each retriever alone (``rrf``: naive rank fusion, for comparison)."""
    rankings = retriever.rank([q.query for q in questions])
    gold = [q.gold_doc_ids for q in questions]
    per_mode = {}
    for mode in (*RETRIEVERS, "rrf"):
        ranked = [[d for d, _ in retriever.documents(r[mode])] for r in rankings]
        per_mode[mode] = retrieval_metrics(ranked, gold, ks)
    configured = retriever.cfg.retriever
    return {"retriever": configured, **per_mode[configured], **per_mode}


def evaluate_corpus(
    docs: Sequence[Document],
    questions: Sequence[EvalQuestion],
    client: Any,
    embedder: Embedder,
    cfg: IndexParams,
    *,
    alias: str = "retrieval-eval",
    progress: bool = False,
) -> dict[str, Any]:
    """Index ``docs`` under its own alias (incrementally: a rerun on the same corpus and embedder embeds
    nothing) and evaluate ``questions`` against it; the figures carry the index summary."""
    if not questions:
        raise EmptyDatasetError("no questions to evaluate: the questions file is empty")
    icfg = cfg.model_copy(update={"collection": alias})
    refreshed, _ = refresh_index(list(docs), client, embedder, icfg, progress=progress)
    collection = serving_collection(client, alias)
    if collection is None:
        raise IndexStateError(f"the index refresh published nothing under {alias!r}")
    metrics = evaluate_retrievers(questions, HybridRetriever(collection, embedder, icfg))
    known = {m["doc_id"] for m in collection.get(include=["metadatas"])["metadatas"] or [] if m is not None}
    missing = sum(1 for q in questions if not set(q.gold_doc_ids) & known)
    return {
        **metrics,
        "embedder": embedder.embedder_id,
        "index": {"version": refreshed.version, "chunks": refreshed.total, "embedded": refreshed.embedded},
        "questions_without_gold_in_corpus": missing,
    }
