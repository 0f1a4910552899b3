"""Data-parallel work on a real engine: a ``dask.distributed`` cluster when one is configured
(``LLMOPS_DASK_ADDRESS``), a pool of local processes otherwise.

One small interface, :class:`Executor`: ``map(fn, batches, state=...)`` runs a picklable function over
batches and returns the results in input order. ``state`` (a :class:`WorkerState`) says how a worker builds
its expensive object (a spaCy pipeline, an embedding model, a chat model); each worker process builds it once,
on its first batch, and keeps it for every later batch and every later ``map`` with an equal state::

    state = WorkerState(FastAnalyzer, (cfg,))
    spans = executor.map(analyze_batch, batches, state=state)  # analyze_batch(analyzer, batch)

Nothing here reads the environment: the edge builds the executor from :class:`~llmops.config.Settings`
(:func:`executor_for`).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmops.errors import ConfigError

__all__ = ["DaskExecutor", "Executor", "LocalExecutor", "WorkerState", "batched", "executor_for", "map_batches"]


@dataclass(frozen=True)
class WorkerState:
    """How a worker builds the object its batches need: ``factory(*args, **kwargs)``, once per process.

    Equal states (same factory, equal pickled arguments) share one object in a worker."""

    factory: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            name = f"{self.factory.__module__}.{self.factory.__qualname__}"
            digest = hashlib.sha256(pickle.dumps((name, self.args, sorted(self.kwargs.items())))).hexdigest()
            object.__setattr__(self, "key", f"{name}:{digest[:16]}")


# Per process: built objects and one lock per object (a worker with several threads builds it once and
# runs one batch at a time on it: the models are not all safe to share between threads).
_BUILT: dict[str, Any] = {}
_LOCKS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


def _lock(key: str) -> threading.Lock:
    with _GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def _call(fn: Callable[..., Any], state: WorkerState | None, batch: Any) -> Any:
    """What a worker runs for one batch: ``fn(batch)``, or ``fn(obj, batch)`` with this process's object."""
    if state is None:
        return fn(batch)
    with _lock(state.key):
        if state.key not in _BUILT:
            _BUILT[state.key] = state.factory(*state.args, **state.kwargs)
        return fn(_BUILT[state.key], batch)


def built_in_this_process() -> list[str]:
    """Keys of the worker states built in this process (a test checks that a worker builds once)."""
    return sorted(_BUILT)


class Executor(Protocol):
    """Maps a picklable function over batches; results in input order."""

    @property
    def workers(self) -> int: ...

    def map(self, fn: Callable[..., Any], batches: Sequence[Any], *, state: WorkerState | None = None) -> list[Any]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """A pool of ``workers`` local processes (spawned, not forked: the parent may hold threads and locks),
    started on first use and kept until :meth:`close`, so workers build their state once."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ConfigError(f"a local executor needs at least one worker, got {workers}")
        self._workers = workers
        self._pool: Any = None

    @property
    def workers(self) -> int:
        return self._workers

    def map(self, fn: Callable[..., Any], batches: Sequence[Any], *, state: WorkerState | None = None) -> list[Any]:
        if not batches:
            return []
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"))
        n = len(batches)
        return list(self._pool.map(_call, [fn] * n, [state] * n, batches))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


class DaskExecutor:
    """Batches as tasks on a ``dask.distributed`` cluster: a scheduler address (``tcp://host:8786``) or a
    ``Client`` (a ``LocalCluster``'s, in tests). Connects on first use. Workers need the project installed
    (the worker image, infra/) and, for models read from disk, the same paths (a shared volume)."""

    def __init__(self, address: str | None = None, *, client: Any = None, timeout_s: float = 30.0) -> None:
        if address is None and client is None:
            raise ConfigError("a Dask executor needs a scheduler address (LLMOPS_DASK_ADDRESS) or a client")
        self.address = address or str(client.scheduler.address)
        self._client = client
        self._own = client is None
        self._timeout_s = timeout_s

    @property
    def client(self) -> Any:
        if self._client is None:
            from distributed import Client

            try:
                self._client = Client(self.address, timeout=self._timeout_s, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ConfigError(
                    f"cannot reach the Dask scheduler at {self.address!r} ({exc}): start it (`dask scheduler`, "
                    "see infra/README.md) or unset LLMOPS_DASK_ADDRESS to run on local processes"
                ) from exc
        return self._client

    @property
    def workers(self) -> int:
        """Worker threads in the cluster now (at least 1)."""
        threads = self.client.nthreads()
        return max(1, sum(threads.values()))

    def map(self, fn: Callable[..., Any], batches: Sequence[Any], *, state: WorkerState | None = None) -> list[Any]:
        if not batches:
            return []
        n = len(batches)
        futures = self.client.map(_call, [fn] * n, [state] * n, list(batches), pure=False)
        return list(self.client.gather(futures))

    def close(self) -> None:
        """Disconnect (a cluster this executor did not start keeps running)."""
        if self._client is not None and self._own:
            self._client.close()
        self._client = None


def executor_for(dask_address: str | None, workers: int) -> Executor:
    """The Dask cluster at ``dask_address`` when set, else ``workers`` local processes."""
    if dask_address:
        return DaskExecutor(dask_address)
    return LocalExecutor(workers if workers > 0 else min(4, os.cpu_count() or 1))


def batched(items: Sequence[Any], size: int) -> list[list[Any]]:
    """``items`` cut into lists of at most ``size``."""
    size = max(1, size)
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def map_batches(
    executor: Executor,
    fn: Callable[..., list[Any]],
    items: Sequence[Any],
    *,
    size: int = 0,
    state: WorkerState | None = None,
    per_worker: int = 8,
) -> list[Any]:
    """``fn`` over ``items`` in batches on ``executor``, results flattened in input order. ``size`` 0: about
    ``per_worker`` batches per worker (at least 16 items each), so every worker stays busy to the end."""
    if not items:
        return []
    size = size or max(16, -(-len(items) // (executor.workers * per_worker)))
    return [r for chunk in executor.map(fn, batched(items, size), state=state) for r in chunk]
