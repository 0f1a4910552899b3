"""Incremental refresh into versioned collections behind a serving alias.

Each refresh compares the new chunk set with the serving version: unchanged chunks carry their vectors
over (no embedding call), new or changed chunks are embedded, chunks of changed or removed documents
are left behind. The result is written to a new version, validated (count and id check against the
chunk set, a sample query), and only then published by switching the alias. A crash anywhere before
the switch leaves the old version serving. A run with no change makes no embedding call and publishes
nothing; a changed embedder never reuses a vector, so two embedding spaces never share a collection.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from llmops.config import IndexParams
from llmops.errors import IndexStateError
from llmops.index.chunk import chunk_documents
from llmops.index.embed import Embedder
from llmops.index.store import collection_embedder, get_collection
from llmops.index.versions import next_version, prune_versions, serving_collection, switch_alias
from llmops.records import Chunk, Document

_COPY_BATCH = 500


@dataclass
class RefreshResult:
    collection: str
    version: str
    previous: str | None
    embedder: str
    embedded: int
    unchanged: int
    deleted: int
    total: int
    rebuilt: bool
    pruned: list[str]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def manifest(chunks: list[Chunk], embedder_id: str | None = None) -> list[dict[str, Any]]:
    """What the index holds, without text: one row per chunk (a DVC output of the index stage)."""
    return [
        {"chunk_id": c.chunk_id, "doc_id": c.doc_id, "doc_hash": c.doc_hash, "position": c.position}
        | ({"embedder": embedder_id} if embedder_id else {})
        for c in sorted(chunks, key=lambda c: (c.doc_id, c.position))
    ]


def _metadata(c: Chunk, embedder_id: str) -> dict[str, Any]:
    return {"doc_id": c.doc_id, "doc_hash": c.doc_hash, "position": c.position, "title": c.title or "", "embedder": embedder_id}


def _copy(source: Any, target: Any, ids: list[str], chunks: dict[str, Chunk], embedder_id: str) -> None:
    """Carry stored vectors over (positions and titles may move without the text changing)."""
    for i in range(0, len(ids), _COPY_BATCH):
        got = source.get(ids=ids[i : i + _COPY_BATCH], include=["embeddings"])
        target.add(
            ids=list(got["ids"]),
            embeddings=got["embeddings"],
            documents=[chunks[cid].text for cid in got["ids"]],
            metadatas=[_metadata(chunks[cid], embedder_id) for cid in got["ids"]],
        )


def validate_version(collection: Any, chunks: list[Chunk]) -> None:
    """Count and id check against the chunk set, and a sample query that must find its own chunk."""
    wanted = {c.chunk_id for c in chunks}
    count = collection.count()
    stored = set(collection.get(include=[])["ids"])
    if count != len(wanted) or stored != wanted:
        raise IndexStateError(
            f"new index version {collection.name} holds {count} chunks, expected {len(wanted)} "
            f"({len(stored - wanted)} unexpected, {len(wanted - stored)} missing); the alias was not switched"
        )
    if not chunks:
        return
    probe = min(wanted)
    vector = collection.get(ids=[probe], include=["embeddings"])["embeddings"][0]
    hits = collection.query(query_embeddings=[vector], n_results=min(5, count), include=[])["ids"][0]
    if probe not in hits:
        raise IndexStateError(
            f"sample query on new index version {collection.name} did not return its own chunk {probe}; "
            "the alias was not switched"
        )


def refresh_index(
    docs: list[Document],
    client: Any,
    embedder: Embedder,
    cfg: IndexParams,
    *,
    progress: bool = False,
    before_switch: Callable[[Any], None] | None = None,
) -> tuple[RefreshResult, list[Chunk]]:
    """Bring alias ``cfg.collection`` in line with ``docs``; returns the summary and the chunk set.

    ``before_switch`` is called with the finished, validated new version just before the alias switch
    (a hook for extra checks; raising there keeps the old version serving).
    """
    start = time.perf_counter()
    chunks = chunk_documents(docs, cfg.chunk_words, cfg.chunk_overlap, cfg.chunk_mode)
    wanted = {c.chunk_id: c for c in chunks}
    embedder_id = embedder.embedder_id

    try:
        live = serving_collection(client, cfg.collection)
    except IndexStateError:
        live = None  # the served version was deleted behind our back: rebuild it from scratch
    previous = live.name if live is not None else None
    same_space = live is not None and collection_embedder(live) == embedder_id
    existing = set(live.get(include=[])["ids"]) if live is not None and same_space else set()
    keep = sorted(existing & wanted.keys())
    to_embed = [c for cid, c in wanted.items() if cid not in existing]
    deleted = (live.count() - len(keep)) if live is not None else 0

    def result(version: str, pruned: list[str]) -> RefreshResult:
        return RefreshResult(
            collection=cfg.collection,
            version=version,
            previous=previous,
            embedder=embedder_id,
            embedded=len(to_embed),
            unchanged=len(keep),
            deleted=deleted,
            total=len(wanted),
            rebuilt=live is not None and not same_space,
            pruned=pruned,
            seconds=round(time.perf_counter() - start, 3),
        )

    if same_space and not to_embed and not deleted:
        return result(previous or "", []), chunks  # nothing changed: keep serving, publish nothing

    version = next_version(client, cfg.collection)
    target = get_collection(client, version, embedder_id)
    if keep:
        _copy(live, target, keep, wanted, embedder_id)
    # Similar lengths in one call pad less: sort globally, as a single model.encode call would.
    to_embed.sort(key=lambda c: len(c.text))
    step = cfg.batch_size * 4
    for i in range(0, len(to_embed), step):
        batch = to_embed[i : i + step]
        vectors = embedder.embed([c.text for c in batch], progress=progress)
        target.add(
            ids=[c.chunk_id for c in batch],
            embeddings=vectors,
            documents=[c.text for c in batch],
            metadatas=[_metadata(c, embedder_id) for c in batch],
        )
    validate_version(target, chunks)
    if before_switch is not None:
        before_switch(target)
    switch_alias(client, cfg.collection, version)
    pruned = prune_versions(client, cfg.collection, cfg.retention)
    return result(version, pruned), chunks
