"""The answer service attacked over real HTTP (uvicorn on loopback, keys from LLMOPS_API_KEYS) and fuzzed
from its own OpenAPI with schemathesis: hostile requests get 4xx, never 5xx.

Real components: Chroma + MiniLM, SmolLM2, Presidio.
"""

from __future__ import annotations

import select
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error

from llmops.config import BaseParams, IndexParams, Params, ServeParams, Settings
from llmops.feedback.log import GenerationLog, collect_new
from llmops.index.refresh import refresh_index
from llmops.index.store import chroma_client
from llmops.llm.local import LocalChatModel
from llmops.pii.redact import Redactor
from llmops.records import Document
from llmops.serve.answerer import Answerer
from llmops.serve.app import IndexRetriever, create_app
from llmops.serve.auth import load_keys

DOCS = [
    Document(doc_id="renew", text="Renew your driver license online at the DMV website; the fee is 64 dollars."),
    Document(doc_id="ssa", text="You can apply for retirement benefits online from age 62."),
]
SECRET = "web-secret-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {SECRET}"}


@dataclass
class Running:
    url: str
    port: int
    fuzz_app: Any
    log_root: Path


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, model_cache: Path, embedder: Any) -> Iterator[Running]:
    import uvicorn

    home = tmp_path_factory.mktemp("home")
    settings = Settings(home=home, api_keys=SecretStr(f"web:{SECRET},ops@reviewer:reviewer-secret-0123456789"))
    keys = load_keys(settings)  # as `llmops serve` reads LLMOPS_API_KEYS
    params = Params(serve=ServeParams(max_new_tokens=8))
    refresh_index(DOCS, chroma_client(settings), embedder, IndexParams())
    parts = (IndexRetriever(settings, params), LocalChatModel(model_cache / "base"), GenerationLog(home / "log"))
    redact = Redactor(params.redact).redact_texts

    def answerer(cfg: ServeParams) -> Answerer:
        return Answerer(*parts, redact, cfg, BaseParams(), index_version="v1", data_rev="r1")

    app = create_app(answerer(params.serve), keys=keys)
    # The fuzzer's app: same components, a rate limit it cannot reach (it tests inputs, not throttling).
    fuzz_app = create_app(answerer(params.serve.model_copy(update={"rate_limit_per_minute": 10**6})), keys=keys)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield Running(f"http://127.0.0.1:{port}", port, fuzz_app, home / "log")
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _chunked_upload(port: int, total: int, chunk: int = 64 * 1024) -> tuple[int, bytes]:
    """POST ``total`` bytes as a chunked body until the server answers; returns (bytes sent, response)."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        "POST /answer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {SECRET}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    conn.sendall(head.encode())
    frame = f"{chunk:x}\r\n".encode() + b"a" * chunk + b"\r\n"
    sent, response = 0, b""
    try:
        while sent < total:
            readable, writable, _ = select.select([conn], [conn], [], 10)
            if readable:
                break
            assert writable, "the server neither read the body nor answered"
            conn.sendall(frame)
            sent += chunk
        while b"\r\n\r\n" not in response:
            data = conn.recv(65536)
            if not data:
                break
            response += data
    except (BrokenPipeError, ConnectionResetError):
        response += conn.recv(65536) if select.select([conn], [], [], 1)[0] else b""
    finally:
        conn.close()
    return sent, response


def _series(client: httpx.Client) -> set[str]:
    text = client.get("/metrics", headers=BEARER).text
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_with_keys_set_the_service_holds_under_attack(running: Running) -> None:
    with httpx.Client(base_url=running.url, timeout=60) as client:
        q = {"query": "How much does it cost to renew my license?"}
        assert client.post("/answer", json=q).status_code == 401
        ok = client.post("/answer", json=q, headers=BEARER)
        assert ok.status_code == 200 and ok.json()["answer"]
        assert collect_new(running.log_root, {}).generations[-1].key_name == "web"
        json_headers = {**BEARER, "Content-Type": "application/json"}
        surrogate = client.post("/answer", content=b'{"query": "\\ud800 hi"}', headers=json_headers)
        assert surrogate.status_code == 422
        bomb = client.post("/answer", content=b"[" * 20_000 + b"]" * 20_000, headers=json_headers)  # 40 kB, 20,000 deep
        assert bomb.status_code == 400 and len(bomb.content) < 200

        sent, response = _chunked_upload(running.port, 20 * 1024 * 1024)
        assert response.startswith(b"HTTP/1.1 413"), response[:200]
        assert sent < 20 * 1024 * 1024, "the 413 came before the upload finished: the rest was never read"

        client.get("/nope")
        _series(client)  # the /metrics series itself exists from here on
        before = _series(client)
        assert all(client.get(f"/{uuid.uuid4().hex}").status_code == 404 for _ in range(100))
        assert _series(client) == before

        start = time.monotonic()
        codes = [client.post("/answer", json=q, headers=BEARER).status_code for _ in range(300)]
        refilled = 2 * (time.monotonic() - start) + 1  # 120 a minute: 2 tokens a second come back during the burst
        assert codes.count(200) <= 120 + refilled and codes.count(429) >= 1 and set(codes) <= {200, 429}
        assert codes.index(429) <= 120 + refilled
        assert client.get("/healthz").status_code == 200


@pytest.mark.slow  # ~1 min: 40 generated requests per operation, many of them real generations
def test_fuzzed_from_openapi_no_5xx(running: Running) -> None:
    """Every operation of the service's own OpenAPI, 40 generated requests each (valid and invalid), with a key."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", running.fuzz_app)
    calls: Counter[str] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        fuzz_operation(operation.as_strategy(), operation.label, calls)
    assert {"POST /answer", "POST /feedback", "GET /healthz", "GET /metrics"} <= set(calls)
    assert min(calls.values()) >= 1 and calls["POST /answer"] >= 10, dict(calls)


def fuzz_operation(strategy: Any, label: str, calls: Counter[str]) -> None:
    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def fuzz(case: Any) -> None:
        case.call_and_validate(headers=BEARER, checks=[not_a_server_error])
        calls[label] += 1

    fuzz()
