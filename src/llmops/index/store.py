"""Chroma behind a narrow interface. Embedded PersistentClient under the state directory by default;
an HttpClient when ``LLMOPS_CHROMA_URL`` is set. Embeddings are always passed in (Chroma's default
embedding function would try to download a model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from llmops.config import Settings


def chroma_client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        return chromadb.HttpClient(
            host=url.hostname or "localhost", port=url.port or 8000, ssl=url.scheme == "https", settings=chroma_settings
        )
    path = Path(settings.chroma_dir)
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def get_collection(client: Any, name: str, embedder_id: str) -> Any:
    """Open (or create) a cosine collection; its metadata records the embedder that filled it."""
    return client.get_or_create_collection(
        name=name, metadata={"embedder": embedder_id}, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
    )


def collection_embedder(collection: Any) -> str | None:
    return (collection.metadata or {}).get("embedder")


def query(collection: Any, vectors: list[list[float]], k: int) -> list[list[dict[str, Any]]]:
    """Top-``k`` chunks for each query vector as ``{chunk_id, doc_id, text, distance}`` dicts."""
    res = collection.query(query_embeddings=vectors, n_results=k, include=["metadatas", "documents", "distances"])
    out = []
    for ids, metas, docs, dists in zip(res["ids"], res["metadatas"], res["documents"], res["distances"], strict=True):
        out.append(
            [
                {"chunk_id": i, "doc_id": m["doc_id"], "text": d, "distance": float(s)}
                for i, m, d, s in zip(ids, metas, docs, dists, strict=True)
            ]
        )
    return out
