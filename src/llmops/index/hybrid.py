"""Hybrid retrieval: BM25 (bm25s) and dense (Chroma) over the same chunks, fused by weighted RRF.

The sparse side needs no embedding: it is rebuilt from the chunk texts stored in the serving version,
so it follows every incremental refresh (and rollback) for free and always matches the dense side.

Fusion happens at document level: each ranked chunk list is first collapsed to its documents (a page
whose many chunks all match one query term does not crowd out the others), then the document ranks are
fused with weighted reciprocal rank fusion ``sum_i w_i / (k + rank_i)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmops.config import IndexParams
from llmops.index.embed import Embedder

RETRIEVERS = ("hybrid", "dense", "bm25")


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

    def search(self, queries: Sequence[str], k: int) -> list[list[int]]:
        """Positions of the top-``k`` texts for each query (best first; zero-score texts dropped)."""
        import bm25s

        k = min(k, self._size)
        if not queries or k == 0:
            return [[] for _ in queries]
        tokens = bm25s.tokenize(list(queries), stemmer=self._stem, show_progress=False)
        docs, scores = self._bm25.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return [[int(d) for d, s in zip(row, srow, strict=True) if s > 0] for row, srow in zip(docs, scores, strict=True)]


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


class HybridRetriever:
    """Dense, BM25 or hybrid search over one collection version; hits are documents with their best chunk."""

    def __init__(self, collection: Any, embedder: Embedder, cfg: IndexParams) -> None:
        self.collection, self.embedder, self.cfg = collection, embedder, cfg
        self.table = ChunkTable.from_collection(collection)
        self._pos = {cid: i for i, cid in enumerate(self.table.ids)}
        self.sparse = SparseIndex([f"{t}\n{x}" for t, x in zip(self.table.titles, self.table.texts, strict=True)])

    def _dense(self, queries: Sequence[str], n: int) -> list[list[int]]:
        n = min(n, len(self.table.ids))
        if n == 0:
            return [[] for _ in queries]
        vectors = self.embedder.embed(list(queries))
        res = self.collection.query(query_embeddings=vectors, n_results=n, include=[])
        return [[self._pos[cid] for cid in ids] for ids in res["ids"]]

    def chunk_rankings(self, queries: Sequence[str], mode: str) -> dict[str, list[list[int]]]:
        """Ranked chunk positions per retriever side needed by ``mode`` (``cfg.candidates`` deep)."""
        out: dict[str, list[list[int]]] = {}
        if mode in ("dense", "hybrid"):
            out["dense"] = self._dense(queries, self.cfg.candidates)
        if mode in ("bm25", "hybrid"):
            out["bm25"] = self.sparse.search(queries, self.cfg.candidates)
        return out

    def fuse(self, sides: dict[str, list[int]], mode: str) -> list[tuple[str, int]]:
        """``(doc_id, best chunk position)`` best first, for one query."""
        best: dict[str, int] = {}
        doc_rankings = {}
        for name, positions in sides.items():
            for p in positions:
                best.setdefault(self.table.doc_ids[p], p)
            doc_rankings[name] = collapse([self.table.doc_ids[p] for p in positions])
        if mode == "hybrid":
            weights = [self.cfg.dense_weight, self.cfg.bm25_weight]
            docs = rrf([doc_rankings["dense"], doc_rankings["bm25"]], weights, self.cfg.rrf_k)
        else:
            docs = doc_rankings[mode]
        return [(d, best[d]) for d in docs]

    def search(self, queries: Sequence[str], k: int = 10, mode: str | None = None) -> list[list[dict[str, Any]]]:
        """Top-``k`` documents per query as ``{chunk_id, doc_id, text, score}`` (score = fused rank order)."""
        mode = mode or self.cfg.retriever
        if mode not in RETRIEVERS:
            raise ValueError(f"retriever {mode!r} is unknown: use one of {', '.join(RETRIEVERS)}")
        rankings = self.chunk_rankings(queries, mode)
        out = []
        for i in range(len(queries)):
            fused = self.fuse({name: r[i] for name, r in rankings.items()}, mode)[:k]
            out.append(
                [
                    {"chunk_id": self.table.ids[p], "doc_id": d, "text": self.table.texts[p], "score": 1.0 / (rank + 1)}
                    for rank, (d, p) in enumerate(fused)
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
