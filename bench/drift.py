"""Drift report cost vs size: 1k, 10k and 100k rows per window (``LLMOPS_BENCH_DRIFT_SIZES=1000,10000``).

Windows are real conversations: reference = bitext customer-support turns, current = half bitext, half
banking77 (drawn with replacement to reach 100k). Measured per size, each in seconds:
* ``report``   : the conversation drift report as the monitor stage runs it (descriptors, Evidently
  DataDriftPreset over 11 signals, new-vocabulary share, HTML + JSON written) without raw-text content drift;
* ``text``     : the same with raw-text content drift (domain classifier) — only up to 10k rows, it grows
  fastest and is the part to switch off (``monitor.text_content_drift``) on big windows;
* ``emb_drift``: embedding drift of ``embedding_sample`` (1000) vectors per window with the model method,
  on fixed random vectors (embedding cost itself is the index benchmark's business); constant by design.
Baseline: the 1k-row report; ratios show how cost grows against 10x/100x rows.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _windows(n: int) -> tuple[list, list]:
    from llmops.data.sources import banking77_conversations, bitext_conversations

    bitext = list(bitext_conversations(next((SHARED / "bitext-customer-support").glob("*.csv"))))
    banking = list(banking77_conversations(SHARED / "banking77/train.csv"))
    rng = random.Random(0)
    ref = rng.choices(bitext, k=n)
    cur = rng.choices(bitext, k=n // 2) + rng.choices(banking, k=n - n // 2)
    return ref, cur


def _time(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 2)


def run() -> dict:
    import numpy as np

    from llmops.config import MonitorParams
    from llmops.monitoring.drift import drift_report
    from llmops.monitoring.embeddings import vector_drift

    sizes = [int(s) for s in os.environ.get("LLMOPS_BENCH_DRIFT_SIZES", "1000,10000,100000").split(",")]
    out: dict = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-drift-"))
    drift_report(*_windows(200), MonitorParams(text_content_drift=False), tmp / "warm")  # imports, first-call caches
    rng = np.random.default_rng(0)
    ref_v = rng.normal(size=(1000, 384)).astype(np.float32)
    cur_v = rng.normal(size=(1000, 384)).astype(np.float32) + 0.05
    for n in sizes:
        ref, cur = _windows(n)
        row = {"rows": n}
        row["report"] = _time(lambda: drift_report(ref, cur, MonitorParams(text_content_drift=False), tmp / f"r{n}"))  # noqa: B023
        if n <= 10_000:
            row["text"] = _time(lambda: drift_report(ref, cur, MonitorParams(text_content_drift=True), tmp / f"t{n}"))  # noqa: B023
        row["emb_drift"] = _time(lambda: vector_drift(ref_v, cur_v, MonitorParams()))
        out[str(n)] = row
    base = out[str(sizes[0])]["report"]
    print(f"{'rows':>8} {'report s':>9} {'x 1k':>6} {'ms/row':>7} {'+text s':>8} {'emb s':>6}")
    for row in out.values():
        print(
            f"{row['rows']:>8} {row['report']:>9.2f} {row['report'] / base:>6.1f} {1000 * row['report'] / row['rows']:>7.3f} "
            f"{row.get('text', float('nan')):>8.2f} {row['emb_drift']:>6.2f}"
        )
    return out
