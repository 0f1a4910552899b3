"""Incremental refresh: embed only new or changed chunks, delete chunks of changed/removed documents,
keep unchanged vectors. A run with no change makes zero embedding calls."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from llmops.config import IndexParams
from llmops.index.chunk import chunk_documents
from llmops.index.embed import Embedder
from llmops.index.store import collection_embedder, get_collection
from llmops.records import Chunk, Document


@dataclass
class RefreshResult:
    collection: str
    embedder: str
    embedded: int
    unchanged: int
    deleted: int
    total: int
    rebuilt: bool
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def manifest(chunks: list[Chunk]) -> list[dict[str, Any]]:
    """What the index holds, without text: one row per chunk (a DVC output of the index stage)."""
    return [
        {"chunk_id": c.chunk_id, "doc_id": c.doc_id, "doc_hash": c.doc_hash, "position": c.position}
        for c in sorted(chunks, key=lambda c: (c.doc_id, c.position))
    ]


def refresh_index(
    docs: list[Document], client: Any, embedder: Embedder, cfg: IndexParams, *, progress: bool = False
) -> tuple[RefreshResult, list[Chunk]]:
    """Bring collection ``cfg.collection`` in line with ``docs``; returns the summary and the chunk set."""
    start = time.perf_counter()
    chunks = chunk_documents(docs, cfg.chunk_words, cfg.chunk_overlap)
    wanted = {c.chunk_id: c for c in chunks}

    collection = get_collection(client, cfg.collection, embedder.embedder_id)
    rebuilt = False
    if collection_embedder(collection) != embedder.embedder_id:
        # Two embedding spaces must never share a collection.
        client.delete_collection(cfg.collection)
        collection = get_collection(client, cfg.collection, embedder.embedder_id)
        rebuilt = True

    existing = set(collection.get(include=[])["ids"])
    to_add = [c for cid, c in wanted.items() if cid not in existing]
    to_delete = sorted(existing - wanted.keys())

    for i in range(0, len(to_add), cfg.batch_size * 4):
        batch = to_add[i : i + cfg.batch_size * 4]
        vectors = embedder.embed([c.text for c in batch], progress=progress)
        collection.add(
            ids=[c.chunk_id for c in batch],
            embeddings=vectors,
            documents=[c.text for c in batch],
            metadatas=[
                {"doc_id": c.doc_id, "doc_hash": c.doc_hash, "position": c.position, "title": c.title or ""} for c in batch
            ],
        )
    if to_delete:
        collection.delete(ids=to_delete)

    result = RefreshResult(
        collection=cfg.collection,
        embedder=embedder.embedder_id,
        embedded=len(to_add),
        unchanged=len(wanted) - len(to_add),
        deleted=len(to_delete),
        total=collection.count(),
        rebuilt=rebuilt,
        seconds=round(time.perf_counter() - start, 3),
    )
    return result, chunks
