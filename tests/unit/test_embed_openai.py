"""OpenAI embeddings against a real local HTTP server (loopback), injected via base_url."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from llmops.config import IndexParams, Settings
from llmops.errors import ModelNotAvailableError
from llmops.index.embed import make_embedder
from llmops.index.embed_openai import OpenAIEmbedder
from llmops.index.refresh import refresh_index
from llmops.index.store import chroma_client
from llmops.index.versions import serving_collection
from llmops.records import Document
from tests.factories import serve_json


class _Server:
    """An OpenAI-compatible /v1/embeddings: vectors are word-hash counts; scripted failures first."""

    def __init__(self) -> None:
        self.failures: list[int] = []  # status codes to answer before succeeding
        self.requests: list[dict] = []
        self.url = ""

    def respond(self, body: dict) -> tuple[int, dict]:
        self.requests.append(body)
        if self.failures:
            code = self.failures.pop(0)
            return code, {"error": {"message": f"scripted {code}", "type": "x", "code": None}}
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": _vector(t)} for i, t in enumerate(texts)]
        return 200, {"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 1, "total_tokens": 1}}


def _vector(text: str, dim: int = 16) -> list[float]:
    v = [0.0] * dim
    for w in text.lower().split():
        v[sum(map(ord, w)) % dim] += 1.0
    norm = sum(x * x for x in v) ** 0.5 or 1.0
    return [x / norm for x in v]


@pytest.fixture()
def server() -> Iterator[_Server]:
    s = _Server()
    with serve_json(s.respond) as s.url:
        yield s


def _embedder(url: str, **kw: object) -> OpenAIEmbedder:
    sleeps: list[float] = []
    emb = OpenAIEmbedder("local-embed", base_url=url, api_key="test", sleep=sleeps.append, **kw)  # type: ignore[arg-type]
    emb.sleeps = sleeps  # type: ignore[attr-defined]
    return emb


def test_batches_and_dimension_probe(server: _Server) -> None:
    emb = _embedder(server.url, batch_size=2)
    assert emb.embedder_id == "openai:local-embed:16"  # unknown model: asked the server once
    vectors = emb.embed(["a b", "c", "d e f"])
    assert len(vectors) == 3 and vectors[0] == _vector("a b")
    assert [len(r["input"]) for r in server.requests] == [1, 2, 1]


def test_retries_transient_errors_then_gives_up_with_a_clear_error(server: _Server) -> None:
    emb = _embedder(server.url, max_retries=3, backoff_s=0.5)
    server.failures = [429, 500]
    assert emb.embed(["hello"]) == [_vector("hello")]
    assert emb.retries == 2 and [s for s in emb.sleeps if s >= 0.5] == [0.5, 1.0]  # exponential backoff

    server.failures = [503] * 5
    with pytest.raises(ModelNotAvailableError, match="failed 4 times"):
        emb.embed(["hello"])


def test_client_error_is_not_retried(server: _Server) -> None:
    emb = _embedder(server.url, max_retries=3)
    server.failures = [400]
    with pytest.raises(ModelNotAvailableError, match="rejected \\(400\\)"):
        emb.embed(["hello"])
    assert len(server.requests) == 1


def test_rate_limit_spaces_requests(server: _Server) -> None:
    emb = _embedder(server.url, batch_size=1, requests_per_minute=60)  # one request a second
    emb.embed(["a", "b", "c"])
    assert len(emb.sleeps) == 2 and all(0.5 < s <= 1.0 for s in emb.sleeps)


def test_refresh_through_settings_base_url(server: _Server, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, OPENAI_BASE_URL=server.url, OPENAI_API_KEY="test")
    emb = make_embedder("openai:local-embed", IndexParams(), settings)
    docs = [Document(doc_id="a", text="reset your password online"), Document(doc_id="b", text="opening hours")]
    result, _ = refresh_index(docs, chroma_client(settings), emb, IndexParams())
    assert (result.embedded, result.embedder) == (2, "openai:local-embed:16")
    assert serving_collection(chroma_client(settings), "knowledge-base").count() == 2
