"""The answer service on real components (Chroma + MiniLM, SmolLM2, Presidio) via FastAPI's TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from llmops.config import BaseParams, IndexParams, Params, ServeParams, Settings
from llmops.feedback.log import GenerationLog, collect_new
from llmops.index import refresh_index
from llmops.index.embed import LocalEmbedder
from llmops.index.store import chroma_client
from llmops.llm.local import LocalChatModel
from llmops.pii import Redactor
from llmops.records import Document
from llmops.serve.answerer import Answerer
from llmops.serve.app import IndexRetriever, create_app

DOCS = [
    Document(doc_id="renew", text="Renew your driver license online at the DMV website; the fee is 64 dollars."),
    Document(doc_id="ssa", text="You can apply for retirement benefits online from age 62."),
]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[tuple[TestClient, Path]]:
    home = tmp_path_factory.mktemp("home")
    settings = Settings(home=home)
    params = Params(serve=ServeParams(max_new_tokens=12, max_body_bytes=2048))
    refresh_index(DOCS, chroma_client(settings), LocalEmbedder(), IndexParams())
    answerer = Answerer(
        IndexRetriever(settings, params),
        LocalChatModel(model_cache / "base"),
        GenerationLog(home / "log"),
        Redactor(params.redact).redact_texts,
        params.serve,
        BaseParams(),
        index_version="v1",
        data_rev="r1",
    )
    with TestClient(create_app(answerer, max_body_bytes=2048)) as client:
        yield client, home / "log"


def test_answer_is_logged_redacted_and_cached(service: tuple[TestClient, Path]) -> None:
    client, log_root = service
    q = {"query": "How do I renew my license? I am John Smith, mail john.smith@example.com"}
    first = client.post("/answer", json=q)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["retrieved_doc_ids"][0] == "renew" and body["index_version"] == "v1" and body["answer"]
    second = client.post("/answer", json=q)
    assert second.json()["answer"] == body["answer"] and second.json()["generation_id"] != body["generation_id"]
    logged = collect_new(log_root, {}).generations
    assert [e.generation_id for e in logged][-2:] == [body["generation_id"], second.json()["generation_id"]]
    assert "john.smith@example.com" not in logged[-1].query and "<EMAIL_ADDRESS_1>" in logged[-1].query
    assert "John Smith" not in logged[-1].query
    metrics = client.get("/metrics").text
    assert "llmops_answer_cache_hits_total 1.0" in metrics


def test_feedback_recorded_and_redacted(service: tuple[TestClient, Path]) -> None:
    client, log_root = service
    gid = client.post("/answer", json={"query": "When can I get retirement benefits?"}).json()["generation_id"]
    ok = client.post("/feedback", json={"generation_id": gid, "rating": -1, "correction": "From 62; call 212-555-0198"})
    assert ok.status_code == 202
    update = collect_new(log_root, {}).updates[-1]
    assert update.generation_id == gid and update.rating == -1 and "212-555-0198" not in (update.correction or "")


@pytest.mark.parametrize(
    ("path", "payload", "status", "detail"),
    [
        ("/answer", {}, 422, "query"),
        ("/answer", {"query": ""}, 422, "query"),
        ("/answer", {"query": "x", "extra": 1}, 422, "extra"),
        ("/feedback", {"generation_id": "nope", "rating": 1}, 404, "unknown generation_id"),
        ("/feedback", {"generation_id": "nope", "rating": 7}, 422, "rating"),
        ("/feedback", {"generation_id": "nope"}, 422, "rating"),
        ("/answer", {"query": "x" * 5000}, 413, "over 2048 bytes"),
    ],
)
def test_bad_requests_get_clear_4xx(service: tuple[TestClient, Path], path: str, payload: dict, status: int, detail: str) -> None:
    resp = service[0].post(path, json=payload)
    assert resp.status_code == status
    assert detail in resp.text


def test_healthz(service: tuple[TestClient, Path]) -> None:
    assert service[0].get("/healthz").json()["index_version"] == "v1"
