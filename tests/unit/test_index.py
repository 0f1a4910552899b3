"""Incremental refresh on the real embedder and a real Chroma PersistentClient."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmops.config import IndexParams, Settings
from llmops.index import refresh_index
from llmops.index.embed import LocalEmbedder
from llmops.index.store import chroma_client, get_collection, query
from llmops.records import Document


class CountingEmbedder:
    """Wraps the real embedder to count embedding calls (no behaviour change)."""

    def __init__(self, inner: LocalEmbedder) -> None:
        self.inner, self.texts = inner, 0

    @property
    def embedder_id(self) -> str:
        return self.inner.embedder_id

    def embed(self, texts: list[str], *, progress: bool = False) -> list[list[float]]:
        self.texts += len(texts)
        return self.inner.embed(texts)


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder()


DOCS = [
    Document(doc_id="renew", text="To renew a driver license, visit the DMV website and pay the renewal fee online."),
    Document(doc_id="benefits", text="Social Security retirement benefits can start at age 62, reduced before full age."),
    Document(doc_id="loans", text="Federal student loans must be repaid; income-driven repayment plans lower payments."),
]


def _client(tmp_path: Path) -> Any:
    return chroma_client(Settings(home=tmp_path))


def test_build_query_and_no_change_refresh(tmp_path: Path, embedder: LocalEmbedder) -> None:
    client, counting, cfg = _client(tmp_path), CountingEmbedder(embedder), IndexParams()
    first, _ = refresh_index(DOCS, client, counting, cfg)
    assert (first.embedded, first.unchanged, first.deleted, first.total) == (3, 0, 0, 3)
    assert embedder.embedder_id == "all-MiniLM-L6-v2:384"
    collection = get_collection(client, cfg.collection, embedder.embedder_id)
    hits = query(collection, embedder.embed(["how do I renew my licence"]), k=3)[0]
    assert hits[0]["doc_id"] == "renew"

    counting.texts = 0
    again, _ = refresh_index(DOCS, client, counting, cfg)
    assert (again.embedded, again.unchanged, again.deleted) == (0, 3, 0)
    assert counting.texts == 0  # no embedding call at all


def test_changed_doc_replaces_its_chunks_and_removed_doc_disappears(tmp_path: Path, embedder: LocalEmbedder) -> None:
    client, cfg = _client(tmp_path), IndexParams()
    refresh_index(DOCS, client, embedder, cfg)
    changed = [DOCS[0].model_copy(update={"text": "Licenses are renewed online; the fee changed in 2026."}), DOCS[1]]
    result, chunks = refresh_index(changed, client, embedder, cfg)
    assert (result.embedded, result.unchanged, result.deleted, result.total) == (1, 1, 2, 2)
    collection = get_collection(client, cfg.collection, embedder.embedder_id)
    stored = collection.get(include=["metadatas"])
    assert set(stored["ids"]) == {c.chunk_id for c in chunks}  # no orphans
    assert {m["doc_id"] for m in stored["metadatas"]} == {"renew", "benefits"}
