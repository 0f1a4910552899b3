"""Redaction throughput: one process, a pool of 2 local processes, and a 2-worker Dask ``LocalCluster``
(processes, 1 thread each), side by side on the same conversations (``make bench B=dask``).

Input: the sample's conversations, repeated under new ids up to ``BENCH_DASK_CONVERSATIONS`` (default 1500).
Each engine is warmed up first (models loaded in every worker), then timed ``BENCH_DASK_REPEATS`` times
(default 3); the table shows the median and the range, in conversations/s and texts/s. Every engine's
output is checked to be byte-identical to the one-process output before its figure is printed.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _conversations(n: int) -> list:
    from llmops.records import Conversation

    base = []
    for line in (ROOT / "data/sample/conversations.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            base.append(Conversation.model_validate_json(line))
        except ValueError:
            continue  # deliberately broken sample lines (the quarantine's test data)
    return [base[i % len(base)].model_copy(update={"conversation_id": f"bench-{i}"}) for i in range(n)]


def run() -> dict:
    from llmops.runtime import OFFLINE_ENV

    for k, v in OFFLINE_ENV.items():
        os.environ.setdefault(k, v)
    from distributed import Client, LocalCluster

    from llmops.config import RedactParams
    from llmops.parallel import DaskExecutor
    from llmops.pii.redact import Redactor

    n = int(os.environ.get("BENCH_DASK_CONVERSATIONS", "1500"))
    repeats = int(os.environ.get("BENCH_DASK_REPEATS", "3"))
    conversations = _conversations(n)
    texts = sum(len(c.turns) for c in conversations)
    key = b"bench" * 8
    one = RedactParams(workers=1)
    pooled = one.model_copy(update={"workers": 2, "parallel_min_texts": 1})

    def dump(cs: list) -> str:
        return "\n".join(json.dumps(c.model_dump(mode="json"), sort_keys=True) for c in cs)

    def timed(redactor: Redactor) -> tuple[list[float], str]:
        redactor.analyzer.warm_up()
        seconds, out = [], ""
        for _ in range(repeats):
            start = time.perf_counter()
            out = dump(redactor.redact_conversations(conversations))
            seconds.append(time.perf_counter() - start)
        redactor.analyzer.close()
        return seconds, out

    results: dict[str, list[float]] = {}
    results["1 process"], reference = timed(Redactor(one, id_key=key))
    results["local pool (2)"], out = timed(Redactor(pooled, id_key=key))
    assert out == reference, "the local pool's output differs from one process"
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as lc,
        Client(lc, set_as_default=False) as client,
    ):
        results["dask LocalCluster (2)"], out = timed(Redactor(pooled, id_key=key, executor=DaskExecutor(client=client)))
    assert out == reference, "the Dask cluster's output differs from one process"

    base = statistics.median(results["1 process"])
    print(f"{n} conversations ({texts} turns), {repeats} timed runs each after a warm-up; output byte-identical\n")
    print(f"{'engine':<24}{'conv/s':>9}{'range':>17}{'turns/s':>10}{'x 1 proc':>10}")
    summary = {}
    for name, secs in results.items():
        med = statistics.median(secs)
        lo, hi = n / max(secs), n / min(secs)
        print(f"{name:<24}{n / med:>9.1f}{f'{lo:.1f}-{hi:.1f}':>17}{texts / med:>10.1f}{base / med:>9.2f}x")
        summary[name] = {"conv_per_s": round(n / med, 1), "range": [round(lo, 1), round(hi, 1)], "x_1proc": round(base / med, 2)}
    print(f"(cores: {os.cpu_count()}; on a machine shared with other work the ratios move between runs)")
    return {"conversations": n, "turns": texts, "repeats": repeats, "engines": summary}
