"""The answer service on real components (Chroma + MiniLM, SmolLM2, Presidio) via FastAPI's TestClient:
keys, lineage, hostile input, rate limits, bounded metric labels, single-flight and the generation queue."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from llmops.config import BaseParams, IndexParams, Params, ServeParams, Settings
from llmops.feedback.log import GenerationLog, collect_new
from llmops.index.embed import LocalEmbedder
from llmops.index.refresh import refresh_index
from llmops.index.store import chroma_client
from llmops.llm.local import LocalChatModel
from llmops.pii.redact import Redactor
from llmops.records import Document
from llmops.serve.answerer import Answerer, QueueFull
from llmops.serve.app import IndexRetriever, create_app
from llmops.serve.auth import KeyRing, parse_key

DOCS = [
    Document(doc_id="renew", text="Renew your driver license online at the DMV website; the fee is 64 dollars."),
    Document(doc_id="ssa", text="You can apply for retirement benefits online from age 62."),
]
USER, OTHER, REVIEWER = "user-secret-0123456789", "other-secret-0123456789", "reviewer-secret-0123456789"
KEYS = KeyRing([parse_key(f"web:{USER}", "t"), parse_key(f"app:{OTHER}", "t"), parse_key(f"ops@reviewer:{REVIEWER}", "t")])


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@dataclass
class Service:
    client: TestClient
    answerer: Answerer
    log_root: Path
    parts: tuple

    def answerer_with(self, **serve: object) -> Answerer:
        retriever, model, log, redact, params = self.parts
        cfg = params.serve.model_copy(update=serve)
        return Answerer(retriever, model, log, redact, cfg, BaseParams(), index_version="v1", data_rev="r1")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Service]:
    home = tmp_path_factory.mktemp("home")
    settings = Settings(home=home)
    params = Params(serve=ServeParams(max_new_tokens=12, max_body_bytes=2048))
    refresh_index(DOCS, chroma_client(settings), LocalEmbedder(), IndexParams())
    parts = (IndexRetriever(settings, params), LocalChatModel(model_cache / "base"), GenerationLog(home / "log"))
    parts = (*parts, Redactor(params.redact).redact_texts, params)
    answerer = Answerer(*parts[:4], params.serve, BaseParams(), index_version="v1", data_rev="r1")
    with TestClient(create_app(answerer, keys=KEYS)) as client:
        yield Service(client, answerer, home / "log", parts)


def test_answer_is_logged_redacted_cached_with_key_name(service: Service) -> None:
    q = {"query": "How do I renew my license? I am John Smith, mail john.smith@example.com"}
    first = service.client.post("/answer", json=q, headers=auth(USER))
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["retrieved_doc_ids"][0] == "renew" and body["index_version"] == "v1" and body["answer"]
    second = service.client.post("/answer", json=q, headers=auth(USER))
    assert second.json()["answer"] == body["answer"] and second.json()["generation_id"] != body["generation_id"]
    logged = collect_new(service.log_root, {}).generations
    assert [e.generation_id for e in logged][-2:] == [body["generation_id"], second.json()["generation_id"]]
    assert "john.smith@example.com" not in logged[-1].query and "<EMAIL_ADDRESS_1>" in logged[-1].query
    assert "John Smith" not in logged[-1].query
    assert logged[-1].key_name == "web" and USER not in (service.log_root / "generations").rglob("*.jsonl").__next__().read_text()
    metrics = service.client.get("/metrics", headers=auth(USER)).text
    assert "llmops_answer_cache_hits_total 1.0" in metrics


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("post", "/answer", {}, 401),
        ("post", "/answer", {"Authorization": "Bearer not-a-key"}, 401),
        ("post", "/answer", {"Authorization": f"Basic {USER}"}, 401),
        ("post", "/feedback", {}, 401),
        ("get", "/metrics", {}, 401),
        ("get", "/healthz", {}, 200),
        ("get", "/metrics", {"Authorization": f"Bearer {REVIEWER}"}, 200),
    ],
)
def test_keys_are_required_where_configured(service: Service, method: str, path: str, headers: dict, status: int) -> None:
    kwargs = {"json": {"query": "When can I get retirement benefits?"}} if method == "post" else {}
    resp = getattr(service.client, method)(path, headers=headers, **kwargs)
    assert resp.status_code == status, resp.text
    if status == 401:
        assert resp.headers["www-authenticate"] == "Bearer" and "Authorization: Bearer" in resp.json()["detail"]


def test_feedback_recorded_with_role_only_by_the_asker_or_a_reviewer(service: Service) -> None:
    gid = service.client.post("/answer", json={"query": "When can I get retirement benefits?"}, headers=auth(USER)).json()[
        "generation_id"
    ]
    fb = {"generation_id": gid, "rating": -1, "correction": "From 62; call 212-555-0198"}
    assert service.client.post("/feedback", json=fb, headers=auth(OTHER)).status_code == 404  # not theirs: does not exist
    assert service.client.post("/feedback", json=fb, headers=auth(USER)).status_code == 202
    assert service.client.post("/feedback", json={**fb, "rating": 1}, headers=auth(REVIEWER)).status_code == 202
    updates = [u for u in collect_new(service.log_root, {}).updates if u.generation_id == gid]
    assert [(u.key_name, u.role, u.rating) for u in updates] == [("web", "user", -1), ("ops", "reviewer", 1)]
    assert "212-555-0198" not in (updates[0].correction or "")


BIG = "A" * 1500


@pytest.mark.parametrize(
    ("path", "payload", "status", "detail"),
    [
        ("/answer", {}, 422, "query"),
        ("/answer", {"query": ""}, 422, "query"),
        ("/answer", {"query": "x", "extra": 1}, 422, "extra"),
        ("/answer", {"query": "\ud800 hi"}, 422, "unicode"),
        ("/answer", {"query": "a\x00b"}, 422, "NUL"),
        ("/answer", {"query": "x", "\udfff" + BIG: 1}, 422, "unicode"),
        ("/answer", [[[]]] * 3, 422, "dict"),
        ("/feedback", {"generation_id": "nope", "rating": 1}, 404, "unknown generation_id"),
        ("/feedback", {"generation_id": "nope", "rating": 7}, 422, "rating"),
        ("/feedback", {"generation_id": "nope"}, 422, "rating"),
        ("/feedback", {"generation_id": "\ud800", "rating": 1}, 422, "generation_id"),
        ("/feedback", {"generation_id": "g", "rating": 1, "correction": "\udcff" + BIG}, 422, "unicode"),
        ("/answer", {"query": "x" * 5000}, 413, "over 2048 bytes"),
    ],
)
def test_hostile_requests_get_4xx_without_echo(service: Service, path: str, payload: object, status: int, detail: str) -> None:
    import json

    body = json.dumps(payload).encode()  # ensure_ascii: lone surrogates travel as \ud800 escapes
    resp = service.client.post(path, content=body, headers={**auth(USER), "Content-Type": "application/json"})
    assert resp.status_code == status, resp.text
    assert detail in resp.text
    assert BIG[:100] not in resp.text and len(resp.content) < 1500  # inputs are never echoed back


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b'{"query": "caf\xe9"}', 422),  # Latin-1, not UTF-8
        (b'{"query": "\xed\xa0\x80 hi"}', 422),  # an encoded surrogate
        (b'{"query": ', 422),
        (b"[" * 1020 + b"]" * 1020, 400),  # nested past the JSON parser's recursion limit
    ],
)
def test_undecodable_or_malformed_bodies_are_4xx(service: Service, raw: bytes, status: int) -> None:
    resp = service.client.post("/answer", content=raw, headers={**auth(USER), "Content-Type": "application/json"})
    assert resp.status_code == status, resp.text
    assert len(resp.content) < 1000


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"[" * 100_000 + b"]" * 100_000, 400),  # a JSON bomb: 100,000 nested arrays in 200 kB
        (b"[" * 100_000, 400),
        (b'{"query": ' + b'{"a": ' * 20_000 + b"1" + b"}" * 20_001, 400),
        (b'{"query": "' + b"[" * 3000 + b'"}', 200),  # brackets inside a string are text
        (b'{"query": ' + b"[" * 20 + b"]" * 20 + b"}", 422),  # under the depth limit: the schema decides
    ],
)
def test_nested_json_bomb_is_4xx_never_a_crash(service: Service, raw: bytes, status: int) -> None:
    app = create_app(service.answerer_with(max_body_bytes=300_000), keys=KEYS)
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.post("/answer", content=raw, headers={**auth(USER), "Content-Type": "application/json"})
        assert resp.status_code == status, resp.text[:300]
        assert len(resp.content) < 1000 or status == 200
        if status == 400:
            assert "nested deeper than 32 levels" in resp.text
        assert client.get("/healthz").status_code == 200


def test_burst_from_one_key_is_rate_limited(service: Service) -> None:
    app = create_app(service.answerer_with(rate_limit_per_minute=120), keys=KEYS)
    with TestClient(app) as client:
        q = {"query": "When can I get retirement benefits?"}
        start = time.monotonic()
        codes = [client.post("/answer", json=q, headers=auth(OTHER)).status_code for _ in range(300)]
        limited = client.post("/answer", json=q, headers=auth(OTHER))
        refilled = 2 * (time.monotonic() - start) + 1  # 120 a minute: 2 tokens a second come back during the burst
        assert 120 <= codes.count(200) <= 120 + refilled and codes.count(429) == 300 - codes.count(200)
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
        assert client.post("/answer", json=q, headers=auth(USER)).status_code == 200  # other keys unaffected
        assert 'llmops_rejected_total{reason="rate_limited"}' in client.get("/metrics", headers=auth(USER)).text


def test_random_paths_add_no_metric_series(service: Service) -> None:
    def series() -> set[str]:
        text = service.client.get("/metrics", headers=auth(REVIEWER)).text
        return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}

    service.client.get("/no-such-path")  # the "unmatched" series exists once
    before = series()
    for _ in range(100):
        assert service.client.get(f"/{uuid.uuid4().hex}/x?q=1", headers=auth(USER)).status_code == 404
    after = series()
    assert after == before
    assert any('endpoint="unmatched"' in s for s in after) and not any("/x" in s for s in after)


def test_identical_concurrent_questions_share_one_generation(service: Service) -> None:
    answerer = service.answerer_with()
    n, barrier, results = 8, threading.Barrier(8), []

    def ask() -> None:
        barrier.wait()
        results.append(answerer.answer("  Can I apply for RETIREMENT benefits online?  "))

    threads = [threading.Thread(target=ask) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answerer.stats["generations"] == 1 and answerer.stats["shared"] + answerer.stats["cache_hits"] >= n - 1
    assert len({r.answer for r in results}) == 1 and len({r.generation_id for r in results}) == n


def test_full_generation_queue_is_503_with_retry_after(service: Service) -> None:
    answerer = service.answerer_with(max_queue=1)
    barrier, errors = threading.Barrier(2), []

    def ask(q: str) -> None:
        barrier.wait()
        try:
            answerer.answer(q)
        except QueueFull as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(q,)) for q in ("How do I renew online?", "What does renewal cost?")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 1 and errors[0].retry_after >= 1 and answerer.stats["generations"] == 1
    with TestClient(create_app(answerer, keys=KEYS)) as client:
        answerer._pending = 1  # a generation in flight elsewhere
        try:
            resp = client.post("/answer", json={"query": "Is there a fee for renewal?"}, headers=auth(USER))
        finally:
            answerer._pending = 0
    assert resp.status_code == 503 and int(resp.headers["retry-after"]) >= 1


def test_feedback_is_accepted_for_the_newest_known_generations_only(service: Service) -> None:
    answerer = service.answerer_with(max_known_generations=2)
    gids = [answerer.answer("When can I get retirement benefits?", caller=KEYS.identify(USER)).generation_id for _ in range(3)]
    assert len(answerer.known) == 2
    with TestClient(create_app(answerer, keys=KEYS)) as client:
        codes = [client.post("/feedback", json={"generation_id": g, "rating": 1}, headers=auth(USER)).status_code for g in gids]
    assert codes == [404, 202, 202]  # the oldest id was forgotten: its feedback is refused, memory stays bounded


def test_healthz(service: Service) -> None:
    assert service.client.get("/healthz").json()["index_version"] == "v1"
