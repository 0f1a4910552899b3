"""Answer-service load test on loopback.

1. Bursts, single-flight off (before) vs on (after): N concurrent identical questions, and N requests
   over 5 distinct questions, all at once; generations (from /metrics), wall time, p50/p95, errors.
2. Cached path (2,000 requests, concurrency 16) and uncached path (100 distinct questions), p50/p95
   latency and requests/s.
3. Crash test: SIGKILL the service mid-load, restart it, and count acknowledged answers missing from
   the generation log and torn lines.

``BENCH_SERVE_PARTS=burst`` runs only part 1.

Real components: Chroma + MiniLM over 12 sample documents, the base SmolLM2 model (no champion in a
fresh state dir), Presidio redaction of every logged line.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = 16
BURST = 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(tmp: Path) -> tuple[Path, dict[str, str]]:
    from llmops.config import IndexParams, Settings, apply_overrides
    from llmops.index.embed import LocalEmbedder
    from llmops.index.refresh import refresh_index
    from llmops.index.store import chroma_client
    from llmops.jsonl import read_jsonl
    from llmops.records import Document

    project = tmp / "project"
    project.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, project / name)
    # No keys on loopback: every request is 'anonymous', so lift its rate limit and queue bound for the load test.
    apply_overrides(
        project / "params.yaml", {"serve.max_new_tokens": 16, "serve.rate_limit_per_minute": 10**7, "serve.max_queue": 10**4}
    )
    home = tmp / "home"
    docs = read_jsonl(ROOT / "data/sample/documents.jsonl", Document)[:12]
    refresh_index(docs, chroma_client(Settings(home=home)), LocalEmbedder(), IndexParams())
    env = {
        **os.environ,
        "LLMOPS_HOME": str(home),
        "LLMOPS_MODEL_CACHE": os.environ.get("LLMOPS_MODEL_CACHE", str(ROOT / ".llmops/models")),
    }
    return project, env


def _start(project: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "llmops", "serve", "--port", str(port), "-C", str(project)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the service did not come up within 180 s")


async def _load(
    port: int, queries: list[str], *, stop_after: float | None = None, concurrency: int = CONCURRENCY
) -> tuple[list[float], list[str], int]:
    """Send ``queries`` with bounded concurrency; returns latencies (s), acknowledged ids, errors."""
    import httpx

    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    acked: list[str] = []
    errors = 0
    start = time.perf_counter()
    limits = httpx.Limits(max_connections=max(concurrency, 100))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=300, limits=limits) as client:

        async def one(q: str) -> None:
            nonlocal errors
            async with sem:
                if stop_after is not None and time.perf_counter() - start > stop_after + 30:
                    return
                t = time.perf_counter()
                try:
                    r = await client.post("/answer", json={"query": q})
                    r.raise_for_status()
                    acked.append(r.json()["generation_id"])
                    latencies.append(time.perf_counter() - t)
                except (httpx.HTTPError, ValueError):
                    errors += 1

        await asyncio.gather(*(one(q) for q in queries))
    return latencies, acked, errors


def _generations(port: int) -> float:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith("llmops_generations_total "))


def _burst(project: Path, env: dict[str, str], single_flight: bool, bursts: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    """Each burst sent all at once to a fresh service; generations it cost, wall time, latencies."""
    from llmops.config import apply_overrides

    apply_overrides(project / "params.yaml", {"serve.single_flight": single_flight})
    port = _free_port()
    proc = _start(project, env, port)
    out = {}
    try:
        for name, queries in bursts.items():
            before = _generations(port)
            t = time.perf_counter()
            lat, _, err = asyncio.run(_load(port, queries, concurrency=len(queries)))
            out[name] = {
                "requests": len(queries),
                "generations": _generations(port) - before,
                "wall_s": round(time.perf_counter() - t, 2),
                "p50_ms": round(_pct(lat, 0.5), 1),
                "p95_ms": round(_pct(lat, 0.95), 1),
                "errors": err,
            }
    finally:
        proc.terminate()
        proc.wait(30)
    return out


def run_bursts(questions: list[str]) -> dict[str, float]:
    """Single-flight off vs on, on the same bursts (fresh service and cache each time)."""
    bursts = {
        f"{BURST} identical": [questions[0]] * BURST,
        f"{BURST} over 5": [questions[1 + i % 5] for i in range(BURST)],
    }
    with tempfile.TemporaryDirectory() as tmp_s:
        project, env = _prepare(Path(tmp_s))
        before = _burst(project, env, False, bursts)
        after = _burst(project, env, True, bursts)
    print(f"{'burst':14s} {'':7s} {'generations':>11s} {'wall s':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'errors':>6s}")
    result: dict[str, float] = {}
    for name in bursts:
        for label, r in (("before", before[name]), ("after", after[name])):
            print(
                f"{name:14s} {label:7s} {r['generations']:11.0f} {r['wall_s']:7.2f} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} "
                f"{r['errors']:6.0f}"
            )
            result |= {f"burst_{name.replace(' ', '_')}_{label}_{k}": v for k, v in r.items()}
        print(f"{name:14s} wall time before/after: {before[name]['wall_s'] / after[name]['wall_s']:.1f}x")
    return result


def _pct(xs: list[float], p: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(p * len(xs)))] * 1000 if xs else float("nan")


def run() -> dict[str, float]:
    from llmops.feedback.log import collect_new
    from llmops.jsonl import read_jsonl
    from llmops.records import EvalQuestion

    questions = [q.query for q in read_jsonl(ROOT / "data/sample/eval_questions.jsonl", EvalQuestion)]
    bursts = run_bursts(questions[:6])
    if os.environ.get("BENCH_SERVE_PARTS") == "burst":
        return bursts
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        project, env = _prepare(tmp)
        port = _free_port()
        proc = _start(project, env, port)
        try:
            hot = questions[:20]
            asyncio.run(_load(port, hot))  # fill the cache
            t = time.perf_counter()
            cached_lat, _, cached_err = asyncio.run(_load(port, [hot[i % 20] for i in range(2000)]))
            cached_s = time.perf_counter() - t
            t = time.perf_counter()
            cold_lat, _, cold_err = asyncio.run(_load(port, questions[20:120]))
            cold_s = time.perf_counter() - t
        finally:
            proc.terminate()
            proc.wait(30)

        # Crash test: kill -9 while 16 requests are in flight, restart, check the log.
        log_root = Path(env["LLMOPS_HOME"]) / "generation-log"
        proc = _start(project, env, port)
        hot = questions[:5]
        asyncio.run(_load(port, hot))  # a few cached answers, so the kill lands in heavy traffic
        before = len(collect_new(log_root, {}).generations)

        async def load_and_kill() -> tuple[list[float], list[str], int]:
            task = asyncio.create_task(_load(port, [hot[i % 5] for i in range(2000)]))
            await asyncio.sleep(6)
            proc.send_signal(signal.SIGKILL)
            return await task

        _, acked, killed_errors = asyncio.run(load_and_kill())
        proc.wait(30)
        proc = _start(project, env, port)
        proc.terminate()
        proc.wait(30)
        after = collect_new(log_root, {})
        logged = {e.generation_id for e in after.generations}
        lost = sum(1 for g in acked if g not in logged)
        torn = len(after.quarantined) + sum(
            1 for p in log_root.glob("*/date=*/*.jsonl") if p.stat().st_size and not p.read_bytes().endswith(b"\n")
        )

    result = {
        **bursts,
        "cached_requests": 2000,
        "cached_rps": round(2000 / cached_s, 1),
        "cached_p50_ms": round(_pct(cached_lat, 0.5), 1),
        "cached_p95_ms": round(_pct(cached_lat, 0.95), 1),
        "cached_errors": cached_err,
        "uncached_requests": 100,
        "uncached_rps": round(100 / cold_s, 2),
        "uncached_p50_ms": round(_pct(cold_lat, 0.5), 1),
        "uncached_p95_ms": round(_pct(cold_lat, 0.95), 1),
        "uncached_errors": cold_err,
        "kill_acknowledged": len(acked),
        "kill_failed_requests": killed_errors,
        "kill_logged_new": len(logged) - before,
        "kill_lost": lost,
        "kill_torn_lines": torn,
    }
    print(f"{'path':10s} {'requests':>8s} {'req/s':>8s} {'p50 ms':>8s} {'p95 ms':>8s}  (concurrency {CONCURRENCY})")
    for path, n in (("cached", 2000), ("uncached", 100)):
        r = {k.removeprefix(path + "_"): v for k, v in result.items() if k.startswith(path + "_")}
        print(f"{path:10s} {n:8d} {r['rps']:8.2f} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f}")
    print(f"cached vs uncached throughput: {result['cached_rps'] / result['uncached_rps']:.0f}x")
    print(f"kill -9 mid-load: {len(acked)} answers acknowledged, {lost} missing from the log, {torn} torn lines")
    return result
