"""Shared fixtures. Every test runs offline with its own state directory (LLMOPS_HOME)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

from llmops.runtime import OFFLINE_ENV  # noqa: E402
from tests.factories import Webhook, serve_webhook  # noqa: E402

for _k, _v in OFFLINE_ENV.items():
    os.environ.setdefault(_k, _v)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """Converted base models, shared by all tests (and kept between local runs in .pytest_cache)."""
    cache = getattr(request.config, "cache", None)
    return Path(cache.mkdir("llmops-models")) if cache is not None else tmp_path_factory.mktemp("models")


@pytest.fixture()
def settings_env(tmp_path: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated LLMOPS_HOME for one test; returns it."""
    home = tmp_path / "home"
    monkeypatch.setenv("LLMOPS_HOME", str(home))
    monkeypatch.setenv("LLMOPS_MODEL_CACHE", str(model_cache))
    return home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.exists():
        pytest.skip("../shared/data is not present")
    return SHARED


def make_workspace(dest: Path, *, tiny: bool = True) -> Path:
    """A runnable copy of the project's DVC workspace (its own DVC repo, no git) with tiny data."""
    from llmops.config import apply_overrides

    dest.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, dest / name)
    for name in ("pipelines", "flows", "src/llmops"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "data").mkdir()
    shutil.copytree(ROOT / "data/sample", dest / "data/sample")
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=dest, check=True)
    shutil.copy(ROOT / ".dvc/config", dest / ".dvc/config")
    with (dest / ".dvc/config").open("a") as fh:
        fh.write("    no_scm = true\n")
    if tiny:
        _shrink(dest / "data/sample")
        apply_overrides(
            dest / "params.yaml",
            {
                "finetune.max_steps": 2,
                "finetune.max_seq_len": 160,  # fits the tiny served prompt (serve.context_chars) and an answer
                "finetune.max_examples": 8,
                "finetune.eval_examples": 2,
                "evaluate.answer_questions": 2,
                "gate.min_paired_examples": 2,  # the tiny run answers 2 gate questions (the product needs 100)
                "evaluate.max_new_tokens": 8,
                "monitor.text_content_drift": False,
                "serve.max_new_tokens": 8,
                "serve.context_chars": 240,
            },
        )
    return dest


def _shrink(sample: Path) -> None:
    """Keep a few records of each file (conversations keep their two malformed lines at the end)."""
    keep = {"documents.jsonl": 6, "eval_questions.jsonl": 10, "feedback.jsonl": 10, "reference_conversations.jsonl": 40}
    for name, n in keep.items():
        lines = (sample / name).read_text(encoding="utf-8").splitlines()
        if name == "eval_questions.jsonl":
            import json

            docs = {json.loads(d)["doc_id"] for d in (sample / "documents.jsonl").read_text().splitlines()}
            lines = [q for q in lines if json.loads(q)["gold_doc_ids"][0] in docs] or lines
        (sample / name).write_text("\n".join(lines[:n]) + "\n", encoding="utf-8")
    import json

    convs = (sample / "conversations.jsonl").read_text(encoding="utf-8").splitlines()
    docs = {json.loads(d)["doc_id"] for d in (sample / "documents.jsonl").read_text().splitlines()}
    dialogues = [c for c in convs[360:-2] if json.loads(c)["metadata"].get("doc_id") in docs][:8]
    picked = convs[:20] + convs[240:260] + dialogues + convs[-2:]  # bitext, twitter, doc2dial, the malformed pair
    (sample / "conversations.jsonl").write_text("\n".join(picked) + "\n", encoding="utf-8")


@pytest.fixture()
def workspace(tmp_path: Path, settings_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    ws = make_workspace(tmp_path / "ws")
    monkeypatch.chdir(ws)
    yield ws


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A temporary Prefect API (SQLite) for flow tests."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real HTTP S3 endpoint on loopback (moto server) for boto3 and DVC's s3 remote."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture()
def webhook() -> Iterator[Webhook]:
    """A loopback Slack-compatible webhook; ``webhook.received`` holds the JSON bodies it was sent."""
    with serve_webhook() as hook:
        yield hook


@pytest.fixture(scope="session")
def embedder() -> Any:
    """The packaged all-MiniLM-L6-v2, loaded once for the whole run."""
    from llmops.index.embed import LocalEmbedder

    return LocalEmbedder()
