"""Hybrid retrieval: BM25 (bm25s) and dense (Chroma) over the same chunks, fused by weighted RRF.

The sparse side needs no embedding: it is rebuilt from the chunk texts stored in the serving version,
so it follows every incremental refresh (and rollback) for free and always matches the dense side.

Fusion is by score: the union of both candidate sets gets its exact score on each side (dense
similarity, BM25), each side is divided by its best score, and the weighted sum ranks the chunks; a
document ranks at its best chunk. Measured on doc2dial (first-turn questions, weights chosen on the
later turns), this beats reciprocal rank fusion of the same two lists (``rrf`` below, kept for
comparison): recall@5 0.872 vs 0.851.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from llmops.config import IndexParams
from llmops.index.embed import Embedder

RETRIEVERS = ("hybrid", "dense", "bm25")


class RetrievalHit(TypedDict):
    """One retrieved document at its best chunk, as :meth:`HybridRetriever.search` returns it and the evaluation,
    the training-set prompts and the answer service consume it. A plain JSON object at run time (the retrieval
    cache stores it as such); its keys and types are checked statically."""

    chunk_id: str
    doc_id: str
    text: str
    score: float  # 1 / rank


def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


class SparseIndex:
    """BM25 over chunk texts (title included: it is free on the sparse side)."""

    def __init__(self, texts: Sequence[str]) -> None:
        import bm25s

        self._stem = _stemmer()
        self._bm25 = bm25s.BM25()
        self._size = len(texts)
        if texts:
            self._bm25.index(bm25s.tokenize(list(texts), stemmer=self._stem, show_progress=False), show_progress=False)

    def scores(self, query: str) -> Any:
        """BM25 score of every text for one query (a numpy vector; zeros when no term is known)."""
        import bm25s
        import numpy as np

        tokens = bm25s.tokenize([query], stemmer=self._stem, return_ids=False, show_progress=False)[0]
        known = [t for t in tokens if t in self._bm25.vocab_dict] if self._size else []
        return self._bm25.get_scores(known) if known else np.zeros(self._size)

    def top(self, query: str, k: int, scores: Any = None) -> dict[int, float]:
        """``{position: score}`` of the top-``k`` texts with a positive score (``scores``: precomputed)."""
        import numpy as np

        scores = self.scores(query) if scores is None else scores
        k = min(k, self._size)
        if k == 0:
            return {}
        best = np.argpartition(-scores, k - 1)[:k]
        return {int(i): float(scores[i]) for i in best[np.argsort(-scores[best])] if scores[i] > 0}

    def search(self, queries: Sequence[str], k: int) -> list[list[int]]:
        """Positions of the top-``k`` texts for each query (best first; zero-score texts dropped)."""
        return [list(self.top(q, k)) for q in queries]


def collapse(doc_ids: Sequence[str]) -> list[str]:
    """Chunk ranking -> document ranking (each document at its best chunk's rank)."""
    return list(dict.fromkeys(doc_ids))


def rrf(rankings: Sequence[Sequence[str]], weights: Sequence[float], k: int) -> list[str]:
    """Weighted reciprocal rank fusion of ranked id lists."""
    scores: dict[str, float] = {}
    for ranking, w in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking):
            scores[item] = scores.get(item, 0.0) + w / (k + rank + 1)
    return sorted(scores, key=lambda item: -scores[item])


@dataclass
class ChunkTable:
    """The chunks of one index version, in a fixed order shared by both sides."""

    ids: list[str]
    doc_ids: list[str]
    texts: list[str]
    titles: list[str]

    @classmethod
    def from_collection(cls, collection: Any) -> ChunkTable:
        got = collection.get(include=["documents", "metadatas"])
        metas = got["metadatas"] or []
        return cls(
            list(got["ids"]),
            [m["doc_id"] for m in metas],
            list(got["documents"] or []),
            [m.get("title") or "" for m in metas],
        )


def fuse_scores(dense: dict[int, float], sparse: dict[int, float], w_dense: float, w_sparse: float) -> list[int]:
    """Weighted sum of max-normalised scores over the union of both candidate sets, best first.

    Each side is divided by its best score, so both lie in [0, 1] whatever the scale of BM25 for this
    query; candidates come with their exact score on both sides (see :meth:`HybridRetriever.rank`).
    """
    top_d = max(dense.values(), default=0.0) or 1.0
    top_s = max(sparse.values(), default=0.0) or 1.0
    fused = {
        p: w_dense * max(dense.get(p, 0.0), 0.0) / top_d + w_sparse * sparse.get(p, 0.0) / top_s
        for p in dense.keys() | sparse.keys()
    }
    return sorted(fused, key=lambda p: (-fused[p], p))


class HybridRetriever:
    """Dense, BM25 or hybrid search over one collection version; hits are documents with their best chunk."""

    def __init__(self, collection: Any, embedder: Embedder, cfg: IndexParams) -> None:
        self.collection, self.embedder, self.cfg = collection, embedder, cfg
        self.table = ChunkTable.from_collection(collection)
        self._pos = {cid: i for i, cid in enumerate(self.table.ids)}
        self.sparse = SparseIndex([f"{t}\n{x}" for t, x in zip(self.table.titles, self.table.texts, strict=True)])

    def _dense(self, vectors: list[list[float]], n: int) -> list[dict[int, float]]:
        n = min(n, len(self.table.ids))
        if n == 0:
            return [{} for _ in vectors]
        res = self.collection.query(query_embeddings=vectors, n_results=n, include=["distances"])
        # cosine space: similarity = 1 - distance
        return [
            {self._pos[c]: 1.0 - float(d) for c, d in zip(ids, dists, strict=True)}
            for ids, dists in zip(res["ids"], res["distances"], strict=True)
        ]

    def _complete_dense(self, vectors: list[list[float]], dense: list[dict[int, float]], want: list[set[int]]) -> None:
        """Exact dense similarity for sparse-only candidates (one ``get`` of their stored vectors)."""
        import numpy as np

        missing = sorted({p for d, w in zip(dense, want, strict=True) for p in w - d.keys()})
        if not missing:
            return
        got = self.collection.get(ids=[self.table.ids[p] for p in missing], include=["embeddings"])
        stored = {self._pos[c]: np.asarray(e, dtype=float) for c, e in zip(got["ids"], got["embeddings"], strict=True)}
        for vec, d, w in zip(vectors, dense, want, strict=True):
            q = np.asarray(vec, dtype=float)
            q = q / (np.linalg.norm(q) or 1.0)
            for p in w - d.keys():
                e = stored[p]
                d[p] = float(q @ e / (np.linalg.norm(e) or 1.0))

    def rank(self, queries: Sequence[str]) -> list[dict[str, list[int]]]:
        """Per query, ranked chunk positions for ``dense``, ``bm25``, ``hybrid`` (score fusion) and
        ``rrf`` (naive reciprocal rank fusion of the two, for comparison)."""
        n = self.cfg.candidates
        vectors = self.embedder.embed(list(queries)) if queries else []
        dense = self._dense(vectors, n)
        sparse_all = [self.sparse.scores(q) for q in queries]
        sparse_top = [self.sparse.top(q, n, scores) for q, scores in zip(queries, sparse_all, strict=True)]
        dense_ranked = [sorted(d, key=lambda p: -d[p]) for d in dense]
        self._complete_dense(vectors, dense, [set(s) for s in sparse_top])
        out = []
        for all_sparse, d, s, dr in zip(sparse_all, dense, sparse_top, dense_ranked, strict=True):
            s_full = {p: float(all_sparse[p]) for p in d.keys() | s.keys() if all_sparse[p] > 0}
            rrf_ranked = rrf([[str(p) for p in dr], [str(p) for p in s]], [1.0, 1.0], 60)
            out.append(
                {
                    "dense": dr,
                    "bm25": list(s),
                    "hybrid": fuse_scores(d, s_full, self.cfg.dense_weight, self.cfg.bm25_weight),
                    "rrf": [int(p) for p in rrf_ranked],
                }
            )
        return out

    def documents(self, ranked: Sequence[int]) -> list[tuple[str, int]]:
        """Chunk ranking -> ``(doc_id, best chunk position)``, each document at its best chunk's rank."""
        best: dict[str, int] = {}
        for p in ranked:
            best.setdefault(self.table.doc_ids[p], p)
        return list(best.items())

    def search(self, queries: Sequence[str], k: int = 10, mode: str | None = None) -> list[list[RetrievalHit]]:
        """Top-``k`` documents per query as ``{chunk_id, doc_id, text, score}`` (score = 1 / rank)."""
        mode = mode or self.cfg.retriever
        if mode not in RETRIEVERS:
            raise ValueError(f"retriever {mode!r} is unknown: use one of {', '.join(RETRIEVERS)}")
        out = []
        for ranking in self.rank(queries):
            docs = self.documents(ranking[mode])[:k]
            out.append(
                [
                    RetrievalHit(chunk_id=self.table.ids[p], doc_id=d, text=self.table.texts[p], score=1.0 / (rank + 1))
                    for rank, (d, p) in enumerate(docs)
                ]
            )
        return out


def open_retriever(client: Any, embedder: Embedder, cfg: IndexParams) -> HybridRetriever:
    """The retriever over the version alias ``cfg.collection`` serves now."""
    from llmops.errors import IndexStateError
    from llmops.index.store import collection_embedder
    from llmops.index.versions import serving_collection

    collection = serving_collection(client, cfg.collection)
    if collection is None:
        raise IndexStateError(f"index {cfg.collection!r} was never published: run the index stage or `llmops index refresh`")
    if collection_embedder(collection) != embedder.embedder_id:
        raise IndexStateError(
            f"index {collection.name} was built with {collection_embedder(collection)}, not {embedder.embedder_id}: "
            "refresh the index with this embedder first"
        )
    return HybridRetriever(collection, embedder, cfg)
