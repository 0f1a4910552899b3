"""Run every benchmark in bench/ and print side-by-side ratios (``make bench``; ``make bench B=pii`` for one).

Benchmarks are never part of the test suite; each prints its own table and returns a dict that is
saved to ``bench/results/latest.json`` for the closing notes and README.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# Long benchmarks run only when named (`make bench B=loop`: ~30 min on 2 CPU cores), never in a plain `make bench`.
ON_REQUEST = {"bench.loop", "bench.nightly_rerun"}


def discover() -> list[str]:
    """Every module in bench/ with a ``run()`` function (run.py itself excluded)."""
    return [f"bench.{p.stem}" for p in sorted((ROOT / "bench").glob("*.py")) if p.stem not in {"run", "__init__"}]


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    selected = [b for b in discover() if (any(a in b for a in argv) if argv else b not in ON_REQUEST)]
    results = {}
    for name in selected:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        results[name] = importlib.import_module(name).run()
        print(f"({time.perf_counter() - start:.0f} s)")
    out = ROOT / "bench/results/latest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
