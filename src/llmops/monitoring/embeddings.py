"""Embedding drift of queries or documents, with Evidently's embedding drift methods on our vectors.

The method (a domain classifier by default: ROC AUC of telling current from reference vectors) is
called directly rather than through a Report: the Report's t-SNE plot costs far more than the test
and adds nothing a morning reader needs. Windows are sub-sampled to ``embedding_sample`` rows each.

:class:`CachedEmbedder` keeps the vectors a run used (``$LLMOPS_HOME/monitor/embeddings.sqlite``, keyed by the
embedder's space and a hash of the text), so the reference window and the documents, which do not change
from one night to the next, are embedded once; the model is loaded only when some text is not in the cache.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llmops.config import MonitorParams
from llmops.index.embed import Embedder
from llmops.reports.drift import EmbeddingDrift

MIN_ROWS = 100


def _sample(texts: Sequence[str], n: int, seed: int) -> list[str]:
    texts = list(texts)
    return texts if len(texts) <= n else random.Random(seed).sample(texts, n)


def drift_method(cfg: MonitorParams) -> Any:
    from evidently.legacy.metrics.data_drift.embedding_drift_methods import distance, mmd, model

    if cfg.embedding_method == "model":
        return model(threshold=cfg.embedding_threshold, bootstrap=False)
    if cfg.embedding_method == "distance":
        return distance(dist="cosine", threshold=cfg.embedding_threshold, bootstrap=False)
    return mmd(threshold=cfg.embedding_threshold, bootstrap=False, pca_components=20)


def vector_drift(reference: Any, current: Any, cfg: MonitorParams) -> EmbeddingDrift:
    """Drift score of two vector matrices (rows = items) with the configured Evidently method."""
    import pandas as pd

    cols = [f"e{i}" for i in range(reference.shape[1])]
    ref, cur = pd.DataFrame(reference, columns=cols), pd.DataFrame(current, columns=cols)
    score, detected, name = drift_method(cfg)(cur, ref)  # evidently order: current, reference
    result = EmbeddingDrift(
        score=round(float(score), 4),
        threshold=cfg.embedding_threshold,
        method=name,
        detected=bool(detected),
        reference_rows=len(ref),
        current_rows=len(cur),
    )
    if min(len(ref), len(cur)) < MIN_ROWS:
        # A classifier on a few dozen vectors scores far from 0.5 by chance: report, do not flag.
        result.detected = False
        result.note = f"fewer than {MIN_ROWS} rows in a window: score not judged"
    return result


def embedding_drift(
    reference: Sequence[str], current: Sequence[str], embedder: Embedder, cfg: MonitorParams, *, seed: int = 42
) -> EmbeddingDrift:
    """Embed (a sample of) both windows with the index embedder and test them for drift."""
    import numpy as np

    ref = np.asarray(embedder.embed(_sample(reference, cfg.embedding_sample, seed)), dtype=np.float32)
    cur = np.asarray(embedder.embed(_sample(current, cfg.embedding_sample, seed + 1)), dtype=np.float32)
    result = vector_drift(ref, cur, cfg)
    result.embedder = embedder.embedder_id
    return result


class CachedEmbedder:
    """An :class:`Embedder` whose vectors of texts seen before come from an SQLite cache.

    ``make`` builds the real embedder, called only when a text is missing from the cache. ``space`` names
    the vector space without loading the model (the embedder's name and a fingerprint of its files, see
    :func:`llmops.monitoring.monitor.embedder_space`). Vectors are float32 bytes keyed by a SHA-256 of
    (space, text): the cache holds no text. :meth:`close` deletes the entries this run did not use, so it
    holds one night's windows and documents, not every batch ever seen.
    """

    def __init__(self, make: Callable[[], Embedder], space: str, path: Path) -> None:
        self._make, self.space, self.path = make, space, path
        self._inner: Embedder | None = None
        self._used: set[str] = set()
        self.embedded = self.reused = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB)")
        self._db.execute("CREATE TABLE IF NOT EXISTS spaces (space TEXT PRIMARY KEY, embedder_id TEXT)")

    @property
    def loaded(self) -> bool:
        return self._inner is not None

    def _model(self) -> Embedder:
        if self._inner is None:
            self._inner = self._make()
            self._db.execute("INSERT OR REPLACE INTO spaces VALUES (?, ?)", (self.space, self._inner.embedder_id))
        return self._inner

    @property
    def embedder_id(self) -> str:
        row = self._db.execute("SELECT embedder_id FROM spaces WHERE space = ?", (self.space,)).fetchone()
        return str(row[0]) if row and not self.loaded else self._model().embedder_id

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.space}\0{text}".encode()).hexdigest()

    def embed(self, texts: list[str], *, progress: bool = False) -> list[list[float]]:
        import numpy as np

        keys = [self._key(t) for t in texts]
        found: dict[str, list[float]] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            rows = self._db.execute(f"SELECT key, vec FROM vectors WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            found.update((k, np.frombuffer(v, dtype=np.float32).tolist()) for k, v in rows)
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
        if missing:
            vectors = self._model().embed([t for _, t in missing], progress=progress)
            for (key, _), vec in zip(missing, vectors, strict=True):
                found[key] = vec
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                ((k, np.asarray(found[k], dtype=np.float32).tobytes()) for k, _ in missing),
            )
        self.embedded += len(missing)
        self.reused += len(texts) - len(missing)
        self._used.update(keys)
        return [found[k] for k in keys]

    def close(self) -> None:
        """Keep only the vectors this run used; commit."""
        if self._used:
            kept = list(self._used)
            self._db.execute("CREATE TEMP TABLE used (key TEXT PRIMARY KEY)")
            for i in range(0, len(kept), 500):
                self._db.executemany("INSERT OR IGNORE INTO used VALUES (?)", ((k,) for k in kept[i : i + 500]))
            self._db.execute("DELETE FROM vectors WHERE key NOT IN (SELECT key FROM used)")
        self._db.commit()
        self._db.close()
