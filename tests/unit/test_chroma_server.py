"""The versioned index against a real `chroma run` server on loopback (HttpClient via LLMOPS_CHROMA_URL)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmops.config import IndexParams, Settings
from llmops.index.embed import LocalEmbedder
from llmops.index.refresh import refresh_index
from llmops.index.store import chroma_client
from llmops.index.versions import read_alias, rollback_alias, serving_collection
from llmops.records import Document


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def chroma_url(tmp_path: Path) -> Iterator[str]:
    exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    if not Path(exe).exists():
        pytest.skip("the chroma CLI is not installed")
    port = _free_port()
    log = (tmp_path / "chroma.log").open("w")
    proc = subprocess.Popen(
        [exe, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"chroma server did not start: {(tmp_path / 'chroma.log').read_text()}") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_refresh_switch_and_rollback_on_a_chroma_server(chroma_url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", chroma_url=chroma_url)
    client, cfg, embedder = chroma_client(settings), IndexParams(), LocalEmbedder()
    assert client.get_settings().chroma_api_impl == "chromadb.api.fastapi.FastAPI"  # an HTTP client, not local
    assert not settings.chroma_dir.exists()
    docs = [Document(doc_id="a", text="Renew a licence online."), Document(doc_id="b", text="Office hours are 9 to 5.")]
    first, _ = refresh_index(docs, client, embedder, cfg)
    second, chunks = refresh_index(docs[:1], client, embedder, cfg)
    assert (second.embedded, second.unchanged, second.deleted) == (0, 1, 1)

    fresh = chroma_client(settings)  # another process's view: the alias lives on the server
    assert read_alias(fresh, cfg.collection).serving == second.version
    assert set(serving_collection(fresh, cfg.collection).get(include=[])["ids"]) == {c.chunk_id for c in chunks}
    assert rollback_alias(fresh, cfg.collection).serving == first.version
    assert serving_collection(client, cfg.collection).count() == 2
