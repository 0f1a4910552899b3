"""Orchestration overhead: the nightly Prefect flow vs calling the stage entrypoints directly.

Both run the same eight stages on the same tiny workspace, cold (all stages execute), in fresh state
directories. Baseline: each stage's ``main()`` called in sequence in one process (no Prefect, no DVC).
Also measured: a warm nightly run where DVC skips every stage, and what isolating a run costs on its
own: materialising a run workspace (project files + the outputs of dvc.lock from the shared cache).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _workspace(base: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.conftest import make_workspace  # the tests' tiny-workspace builder: same data, same params

    return make_workspace(base / "ws")


def _direct(ws: Path, home: Path) -> float:
    """Baseline: stage mains in one process, in DAG order."""
    env = {**os.environ, "LLMOPS_HOME": str(home)}
    code = (
        "import importlib, time, sys; sys.path.insert(0, '.'); t = time.perf_counter()\n"
        "from llmops.workspace import STAGES\n"
        "for s in STAGES:\n"
        "    importlib.import_module(f'pipelines.{s}').main()\n"
        "print('SECONDS', time.perf_counter() - t)\n"
    )
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ws, env=env, check=True, capture_output=True)
    return time.perf_counter() - t


def _flow(ws: Path, home: Path) -> float:
    env = {**os.environ, "LLMOPS_HOME": str(home)}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "llmops", "run", "nightly", "-C", str(ws)], env=env, check=True, capture_output=True)
    return time.perf_counter() - t


def _materialise(ws: Path, home: Path, base: Path, repeats: int = 3) -> float:
    """Median seconds to materialise a run workspace of ``ws`` and check its outputs out (what every run pays)."""
    import statistics

    from llmops import isolation, versioning
    from llmops.config import Settings

    os.environ["LLMOPS_HOME"] = str(home)
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        dest = isolation.materialise(ws, base / f"run-{i}")
        versioning.configure_remote(dest, Settings())
        versioning.pull(dest)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        os.environ.setdefault("LLMOPS_MODEL_CACHE", str(ROOT / ".llmops/models"))
        ws_direct = _workspace(base / "a")
        direct = _direct(ws_direct, base / "home-direct")
        ws_flow = _workspace(base / "b")
        cold = _flow(ws_flow, base / "home-flow")
        warm = _flow(ws_flow, base / "home-flow")
        materialise = _materialise(ws_flow, base / "home-flow", base)
    result = {
        "direct_s": round(direct, 1),
        "nightly_cold_s": round(cold, 1),
        "nightly_warm_s": round(warm, 1),
        "overhead_ratio": round(cold / direct, 2),
        "warm_vs_cold": round(warm / cold, 2),
        "materialise_s": round(materialise, 2),
    }
    print(f"{'stage functions called directly':40s} {direct:8.1f} s   1.00x (baseline)")
    print(f"{'nightly flow (Prefect + DVC), cold':40s} {cold:8.1f} s   {cold / direct:.2f}x")
    print(f"{'nightly flow, nothing changed (warm)':40s} {warm:8.1f} s   {warm / direct:.2f}x")
    print(f"{'of which: materialise a run workspace':40s} {materialise:8.1f} s   {materialise / direct:.2f}x")
    return result
