"""Incremental, versioned refresh on the real embedder and a real Chroma PersistentClient."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmops.config import IndexParams, Settings
from llmops.errors import IndexStateError
from llmops.index.embed import LocalEmbedder, packaged_minilm_path
from llmops.index.refresh import refresh_index
from llmops.index.store import chroma_client, query
from llmops.index.versions import describe_versions, read_alias, rollback_alias, serving_collection, version_names
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


DOCS = [
    Document(doc_id="renew", text="To renew a driver license, visit the DMV website and pay the renewal fee online."),
    Document(doc_id="benefits", text="Social Security retirement benefits can start at age 62, reduced before full age."),
    Document(doc_id="loans", text="Federal student loans must be repaid; income-driven repayment plans lower payments."),
]


def _client(tmp_path: Path) -> Any:
    return chroma_client(Settings(home=tmp_path))


def _serving_ids(client: Any, alias: str = "knowledge-base") -> set[str]:
    return set(serving_collection(client, alias).get(include=[])["ids"])


def test_build_query_and_no_change_refresh(tmp_path: Path, embedder: LocalEmbedder) -> None:
    client, counting, cfg = _client(tmp_path), CountingEmbedder(embedder), IndexParams()
    first, _ = refresh_index(DOCS, client, counting, cfg)
    assert (first.embedded, first.unchanged, first.deleted, first.total) == (3, 0, 0, 3)
    assert (first.version, first.previous) == ("knowledge-base-v1", None)
    assert embedder.embedder_id == "all-MiniLM-L6-v2:384"
    collection = serving_collection(client, cfg.collection)
    hits = query(collection, embedder.embed(["how do I renew my licence"]), k=3)[0]
    assert hits[0]["doc_id"] == "renew"
    assert {m["embedder"] for m in collection.get(include=["metadatas"])["metadatas"]} == {"all-MiniLM-L6-v2:384"}

    counting.texts = 0
    again, _ = refresh_index(DOCS, client, counting, cfg)
    assert (again.embedded, again.unchanged, again.deleted, again.version) == (0, 3, 0, "knowledge-base-v1")
    assert counting.texts == 0  # no embedding call at all
    assert version_names(client, cfg.collection) == ["knowledge-base-v1"]  # and no new version


def test_changed_doc_replaces_its_chunks_and_removed_doc_disappears(tmp_path: Path, embedder: LocalEmbedder) -> None:
    client, cfg, counting = _client(tmp_path), IndexParams(), CountingEmbedder(embedder)
    refresh_index(DOCS, client, embedder, cfg)
    changed = [DOCS[0].model_copy(update={"text": "Licenses are renewed online; the fee changed in 2026."}), DOCS[1]]
    result, chunks = refresh_index(changed, client, counting, cfg)
    assert (result.embedded, result.unchanged, result.deleted, result.total) == (1, 1, 2, 2)
    assert counting.texts == 1  # only the changed document's chunk
    assert (result.version, result.previous) == ("knowledge-base-v2", "knowledge-base-v1")
    collection = serving_collection(client, cfg.collection)
    stored = collection.get(include=["metadatas"])
    assert collection.count() == len(chunks)
    assert set(stored["ids"]) == {c.chunk_id for c in chunks}  # no orphans
    assert {m["doc_id"] for m in stored["metadatas"]} == {"renew", "benefits"}
    top = query(collection, embedder.embed(["student loan repayment"]), k=2)[0]
    assert "loans" not in {h["doc_id"] for h in top}  # the deleted document is gone from search


def test_embedder_change_builds_a_new_collection(tmp_path: Path, embedder: LocalEmbedder) -> None:
    client, cfg = _client(tmp_path), IndexParams()
    refresh_index(DOCS, client, embedder, cfg)
    (tmp_path / "minilm-copy").symlink_to(packaged_minilm_path())
    other = CountingEmbedder(LocalEmbedder(str(tmp_path / "minilm-copy")))
    result, _ = refresh_index(DOCS, client, other, cfg)
    assert other.embedder_id == "minilm-copy:384"
    assert (result.rebuilt, result.embedded, result.unchanged, result.deleted) == (True, 3, 0, 3)
    assert other.texts == 3  # same texts, new space: every vector is recomputed, none carried over
    serving = serving_collection(client, cfg.collection)
    assert serving.name == "knowledge-base-v2" and serving.metadata["embedder"] == "minilm-copy:384"


class FailingEmbedder(CountingEmbedder):
    """Fault injection: the second embedding batch raises, like a crash mid-refresh."""

    def embed(self, texts: list[str], *, progress: bool = False) -> list[list[float]]:
        if self.texts:
            raise RuntimeError("simulated crash while writing the new version")
        return super().embed(texts)


def _many_docs(tag: str, n: int = 10) -> list[Document]:
    return [Document(doc_id=f"d{i}", text=f"{tag} page {i}: how to file form {i} at the office.") for i in range(n)]


def test_crash_before_switch_leaves_old_version_serving_then_rollback(tmp_path: Path, embedder: LocalEmbedder) -> None:
    client, cfg = _client(tmp_path), IndexParams(batch_size=1)  # 4 chunks per embedding batch
    refresh_index(_many_docs("old"), client, embedder, cfg)
    before = _serving_ids(client)

    with pytest.raises(RuntimeError, match="simulated crash"):
        refresh_index(_many_docs("new"), client, FailingEmbedder(embedder), cfg)
    assert read_alias(client, cfg.collection).serving == "knowledge-base-v1"
    assert _serving_ids(client) == before  # readers never saw the half-written version

    def reject(_: Any) -> None:
        raise IndexStateError("extra validation failed")

    with pytest.raises(IndexStateError):
        refresh_index(_many_docs("new"), client, embedder, cfg, before_switch=reject)
    assert read_alias(client, cfg.collection).serving == "knowledge-base-v1"

    done, chunks = refresh_index(_many_docs("new"), client, embedder, cfg)
    assert done.version == "knowledge-base-v4"  # never reuses a crashed version's name
    assert "knowledge-base-v2" in done.pruned and "knowledge-base-v3" in done.pruned  # unfinished writes cleaned
    assert _serving_ids(client) == {c.chunk_id for c in chunks}

    back = rollback_alias(client, cfg.collection)
    assert back.serving == "knowledge-base-v1" and _serving_ids(client) == before
    with pytest.raises(IndexStateError, match="no earlier version"):
        rollback_alias(client, cfg.collection)


def test_retention_prunes_old_versions(tmp_path: Path, embedder: LocalEmbedder) -> None:
    client, cfg = _client(tmp_path), IndexParams(retention=2)
    for n in range(3):
        refresh_index([Document(doc_id="a", text=f"Version {n} of the opening hours page.")], client, embedder, cfg)
    state = describe_versions(client, cfg.collection)
    assert [(v["version"], v["state"]) for v in state["versions"]] == [
        ("knowledge-base-v2", "previous"),
        ("knowledge-base-v3", "serving"),
    ]


def test_a_vanished_serving_version_is_reported_and_rebuilt(tmp_path: Path, embedder: LocalEmbedder) -> None:
    client, cfg = _client(tmp_path), IndexParams()
    refresh_index(DOCS, client, embedder, cfg)
    client.delete_collection("knowledge-base-v1")  # e.g. removed by hand on the server
    with pytest.raises(IndexStateError, match="no longer exists"):
        serving_collection(client, cfg.collection)
    result, chunks = refresh_index(DOCS, client, embedder, cfg)
    assert (result.version, result.embedded) == ("knowledge-base-v2", 3)
    assert _serving_ids(client) == {c.chunk_id for c in chunks}


def test_index_in_sync_and_stage_retrieval_follow_the_alias(tmp_path: Path, embedder: LocalEmbedder) -> None:
    from llmops import workspace as ws
    from llmops.config import Params
    from llmops.evaluation.rag import evaluate_retrieval
    from llmops.index.hybrid import open_retriever
    from llmops.index.refresh import manifest
    from llmops.jsonl import write_jsonl
    from llmops.records import EvalQuestion
    from llmops.runs.staleness import index_in_sync

    params, settings = Params(), Settings(home=tmp_path / "home")
    _, chunks = refresh_index(DOCS, chroma_client(settings), embedder, params.index)
    write_jsonl(tmp_path / ws.INDEX_MANIFEST, manifest(chunks, embedder.embedder_id))
    assert index_in_sync(params, settings, tmp_path)
    assert not index_in_sync(params, Settings(home=tmp_path / "fresh"), tmp_path)  # empty Chroma: force the stage

    questions = [EvalQuestion(id="q", query="renew my driver license", gold_doc_ids=["renew"])]
    retriever = open_retriever(chroma_client(settings), embedder, params.index)
    metrics, hits = evaluate_retrieval(questions, retriever, [1, 5])
    assert metrics["recall@1"] == 1.0 and hits[0][0]["text"].startswith("To renew")
