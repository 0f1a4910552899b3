"""The executor behind the data-parallel stages: local processes, and a real Dask ``LocalCluster`` of two
worker processes (one thread each), giving the same results as one process."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmops.config import RedactParams, Settings
from llmops.errors import ConfigError
from llmops.parallel import DaskExecutor, LocalExecutor, WorkerState, batched, executor_for, map_batches

ROOT = Path(__file__).resolve().parents[2]


class Built:
    """A worker's 'model': remembers the process that built it."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.pid = os.getpid()
        self.serial = id(self)


def tag_batch(obj: Built, batch: list[int]) -> list[tuple[str, int, int, int]]:
    return [(obj.tag, obj.pid, obj.serial, x * x) for x in batch]


def square(batch: list[int]) -> list[int]:
    return [x * x for x in batch]


def fail_on_three(batch: list[int]) -> list[int]:
    if 3 in batch:
        raise ValueError("three is not allowed")
    return batch


def test_batched_and_worker_state_keys() -> None:
    assert batched([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert batched([], 3) == []
    a, b = WorkerState(Built, ("x",)), WorkerState(Built, ("x",))
    assert a.key == b.key and a.key != WorkerState(Built, ("y",)).key
    assert isinstance(executor_for(None, 2), LocalExecutor) and executor_for(None, 2).workers == 2
    assert isinstance(executor_for("tcp://127.0.0.1:1", 0), DaskExecutor)  # connects on first use only
    with pytest.raises(ConfigError):
        LocalExecutor(0)


def test_unreachable_scheduler_is_a_clear_config_error() -> None:
    executor = DaskExecutor("tcp://127.0.0.1:9", timeout_s=2)
    with pytest.raises(ConfigError, match="LLMOPS_DASK_ADDRESS"):
        executor.map(square, [[1]])


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Two worker processes with one thread each, on loopback."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as lc,
        Client(lc, set_as_default=False) as client,
    ):
        yield client


@pytest.mark.parametrize("kind", ["local", "dask", "dask-address"])
def test_ordered_results_and_one_build_per_worker(kind: str, request: pytest.FixtureRequest) -> None:
    if kind == "local":
        executor: Any = LocalExecutor(2)
    elif kind == "dask":
        executor = DaskExecutor(client=request.getfixturevalue("cluster"))
    else:  # as LLMOPS_DASK_ADDRESS gives it: a scheduler address, connected on first use
        executor = executor_for(request.getfixturevalue("cluster").scheduler.address, 0)
        assert isinstance(executor, DaskExecutor) and executor.workers == 2
    try:
        items = list(range(100))
        assert map_batches(executor, square, items, size=7) == [x * x for x in items]
        state = WorkerState(Built, ("m",))
        first = map_batches(executor, tag_batch, items, size=5, state=state)
        second = map_batches(executor, tag_batch, items, size=3, state=state)
        assert [r[3] for r in first] == [r[3] for r in second] == [x * x for x in items]
        builds: dict[int, set[int]] = {}
        for _, pid, serial, _ in first + second:
            builds.setdefault(pid, set()).add(serial)
        assert pid != os.getpid() and all(len(s) == 1 for s in builds.values()), builds  # once per worker, not per batch
        with pytest.raises(ValueError, match="three"):  # a worker's error reaches the caller as itself
            executor.map(fail_on_three, [[1, 2], [3]])
    finally:
        executor.close()


def _conversations() -> list[Any]:
    from llmops.records import Conversation

    lines = (ROOT / "data/sample/conversations.jsonl").read_text(encoding="utf-8").splitlines()
    out = []
    for line in lines:
        try:
            out.append(Conversation.model_validate_json(line))
        except ValueError:
            continue  # the sample has deliberately broken lines (the quarantine's test data)
    return out


@pytest.mark.slow  # ~80 s on a busy 2-core box: both workers load spaCy and the name lexicon
def test_dask_redaction_is_byte_identical_to_one_process(cluster: Any) -> None:
    from llmops.pii.redact import Redactor

    conversations = _conversations()
    assert len(conversations) > 20
    key = b"k" * 32
    cfg = RedactParams(workers=1)
    local = Redactor(cfg, id_key=key).redact_conversations(conversations)
    # Every detection call of the run goes to the cluster (threshold 1), in batches over both workers.
    dask_cfg = RedactParams(workers=1, parallel_min_texts=1)
    redactor = Redactor(dask_cfg, id_key=key, executor=DaskExecutor(client=cluster))
    try:
        remote = redactor.redact_conversations(conversations)
    finally:
        redactor.analyzer.close()
    dump = lambda cs: "\n".join(json.dumps(c.model_dump(mode="json"), sort_keys=True) for c in cs)  # noqa: E731
    assert dump(remote) == dump(local)
    assert any("<PERSON_1>" in t.text for c in local for t in c.turns)  # there was something to redact
    from llmops.parallel import built_in_this_process

    per_worker = cluster.run(built_in_this_process)
    analyzers = [[k for k in keys if "_worker_analyzer" in k] for keys in per_worker.values()]
    assert len(analyzers) == 2 and all(len(keys) == 1 for keys in analyzers), per_worker  # one analyzer per worker


def test_redactor_from_settings_uses_the_configured_cluster(tmp_path: Path) -> None:
    from llmops.pii.redact import Redactor

    red = Redactor.from_settings(RedactParams(), Settings(home=tmp_path, dask_address="tcp://127.0.0.1:9"))
    assert isinstance(red.analyzer._executor, DaskExecutor) and red.analyzer._executor.address == "tcp://127.0.0.1:9"
    assert Redactor.from_settings(RedactParams(), Settings(home=tmp_path)).analyzer._executor is None


@pytest.mark.slow  # both workers load the embedding model
def test_dask_embedder_matches_the_local_one(cluster: Any, embedder: Any) -> None:
    import numpy as np

    from llmops.index.embed import DEFAULT_EMBEDDER, DistributedEmbedder

    texts = [f"How do I reset the password of account {i}? It says {'error ' * (i % 7)}" for i in range(300)]
    remote = DistributedEmbedder(DEFAULT_EMBEDDER, DaskExecutor(client=cluster), min_texts=100, task_texts=64)
    assert remote.embedder_id == embedder.embedder_id  # asked of a worker: nothing loaded here
    assert remote._local is None
    got = np.asarray(remote.embed(texts))
    assert remote._local is None  # every batch ran on the workers
    assert np.allclose(got, np.asarray(embedder.embed(texts)), atol=1e-5)
    assert len(remote.embed(texts[:3])) == 3 and remote._local is not None  # a query is embedded here


@pytest.mark.slow  # both workers load the chat model
def test_dask_answers_match_the_local_model(cluster: Any, model_cache: Path, tmp_path: Path) -> None:
    from llmops.llm.cluster import ClusterChatModel, on_cluster
    from llmops.llm.local import LocalChatModel

    local = LocalChatModel(model_cache)
    settings = Settings(home=tmp_path)
    assert on_cluster(local, settings) is local  # no cluster configured: unchanged
    remote = on_cluster(local, settings, DaskExecutor(client=cluster))
    assert isinstance(remote, ClusterChatModel) and remote.model_id == local.model_id
    questions = ["How do I reset my password?", "Where is my parcel?", "Can I change my plan?", "Hi", "Cancel my order"]
    conversations = [[{"role": "user", "content": q}] for q in questions]
    here = local.chat_batch(conversations, max_new_tokens=12, batch_size=2)
    there = remote.chat_batch(conversations, max_new_tokens=12, batch_size=2)
    assert [r.text for r in there] == [r.text for r in here]  # the same batches, greedy: the same replies
    assert [r.completion_tokens for r in there] == [r.completion_tokens for r in here]


def test_make_embedder_goes_to_the_configured_cluster(tmp_path: Path) -> None:
    from llmops.config import IndexParams
    from llmops.index.embed import DistributedEmbedder, make_embedder

    emb = make_embedder("all-MiniLM-L6-v2", IndexParams(), Settings(home=tmp_path, dask_address="tcp://127.0.0.1:9"))
    assert isinstance(emb, DistributedEmbedder) and isinstance(emb.executor, DaskExecutor)
    assert emb.executor.address == "tcp://127.0.0.1:9" and emb._local is None  # nothing loaded or connected yet
