"""Embedding drift of queries or documents, with Evidently's embedding drift methods on our vectors.

The method (a domain classifier by default: ROC AUC of telling current from reference vectors) is
called directly rather than through a Report: the Report's t-SNE plot costs far more than the test
and adds nothing a morning reader needs. Windows are sub-sampled to ``embedding_sample`` rows each.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from llmops.config import MonitorParams
from llmops.index.embed import Embedder

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


def vector_drift(reference: Any, current: Any, cfg: MonitorParams) -> dict[str, Any]:
    """Drift score of two vector matrices (rows = items) with the configured Evidently method."""
    import pandas as pd

    cols = [f"e{i}" for i in range(reference.shape[1])]
    ref, cur = pd.DataFrame(reference, columns=cols), pd.DataFrame(current, columns=cols)
    score, detected, name = drift_method(cfg)(cur, ref)  # evidently order: current, reference
    result = {
        "score": round(float(score), 4),
        "threshold": cfg.embedding_threshold,
        "method": name,
        "detected": bool(detected),
        "reference_rows": len(ref),
        "current_rows": len(cur),
    }
    if min(len(ref), len(cur)) < MIN_ROWS:
        # A classifier on a few dozen vectors scores far from 0.5 by chance: report, do not flag.
        result.update(detected=False, note=f"fewer than {MIN_ROWS} rows in a window: score not judged")
    return result


def embedding_drift(
    reference: Sequence[str], current: Sequence[str], embedder: Embedder, cfg: MonitorParams, *, seed: int = 42
) -> dict[str, Any]:
    """Embed (a sample of) both windows with the index embedder and test them for drift."""
    import numpy as np

    ref = np.asarray(embedder.embed(_sample(reference, cfg.embedding_sample, seed)), dtype=np.float32)
    cur = np.asarray(embedder.embed(_sample(current, cfg.embedding_sample, seed + 1)), dtype=np.float32)
    result = vector_drift(ref, cur, cfg)
    result["embedder"] = embedder.embedder_id
    return result
