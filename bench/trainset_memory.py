"""Peak memory of the training-set build against the archive's size (``make bench B=trainset_memory``).

Archives of ``TRAINSET_MEMORY_SIZES`` conversations (default 2,000 and 20,000) are built from ../shared/data
(:func:`bench.incremental.write_archive`); each size is built in a fresh process (peak RSS of that process,
``ru_maxrss``) by the current :func:`llmops.finetune.trainset.build_trainset` and, for comparison, by the
version before candidates and examples were spilled to disk (``TRAINSET_MEMORY_BASELINE``: a git revision,
default ``bfb3734``). Every candidate question gets a serving-sized context (``serve.top_k`` passages of the
sample documents' chunks, ``serve.context_chars``) from BM25 alone (the project's :class:`SparseIndex`): the
dense embedder's memory does not depend on the archive and would only add minutes of CPU. No token window
(``fit``) and no leak scan: both work on batches or on the capped output, not on the archive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import importlib.util, json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from llmops.config import BaseParams, ServeParams, TrainsetParams
from llmops.data.ingest import parse_jsonl
from llmops.index.chunk import chunk_documents
from llmops.index.hybrid import SparseIndex
from llmops.jsonl import iter_jsonl
from llmops.records import Conversation, Document
if sys.argv[2] == "current":
    from llmops.finetune import trainset as mod
else:
    spec = importlib.util.spec_from_file_location("baseline_trainset", sys.argv[2])
    mod = importlib.util.module_from_spec(spec); sys.modules["baseline_trainset"] = mod; spec.loader.exec_module(mod)
docs = parse_jsonl(Path(sys.argv[3]).read_bytes(), Document, source="documents").records
chunks = chunk_documents(docs)
sparse = SparseIndex([c.text for c in chunks])

class Bm25:
    def search(self, queries, k):
        return [[{"text": chunks[p].text} for p in ranked] for ranked in sparse.search(queries, k)]

start = time.perf_counter()
res = mod.build_trainset(iter_jsonl(sys.argv[1], Conversation), [], [], TrainsetParams(), BaseParams(), documents=docs,
                         prompt=mod.ServingPrompt(Bm25(), ServeParams()))
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": round(time.perf_counter() - start, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                  "train": len(res.train), "validation": len(res.validation), "skipped": dict(res.skipped)}))
"""


def _build(archive: Path, variant: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(archive), variant, str(ROOT / "data/sample/documents.jsonl"), str(ROOT / "src")],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")},
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run() -> dict:
    from bench.incremental import write_archive

    sizes = [int(x) for x in os.environ.get("TRAINSET_MEMORY_SIZES", "2000,20000").split(",")]
    baseline_rev = os.environ.get("TRAINSET_MEMORY_BASELINE", "bfb3734")
    results: dict = {"sizes": sizes, "baseline": baseline_rev}
    with tempfile.TemporaryDirectory(prefix="trainset-memory-") as tmp:
        baseline = Path(tmp) / "baseline_trainset.py"
        source = subprocess.run(
            ["git", "show", f"{baseline_rev}:src/llmops/finetune/trainset.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        baseline.write_text(source.stdout)
        print(f"{'conversations':>13} {'variant':>9} {'peak RSS MB':>12} {'s':>7} {'train':>6} {'val':>5}", flush=True)
        for n in sizes:
            archive = Path(tmp) / f"archive-{n}.jsonl"
            write_archive(archive, n)
            for name, variant in (("spilled", "current"), ("held", str(baseline))):
                row = results.setdefault(name, {})[str(n)] = _build(archive, variant)
                rss, secs = row["peak_rss_mb"], row["seconds"]
                print(f"{n:>13} {name:>9} {rss:>12.0f} {secs:>7.1f} {row['train']:>6} {row['validation']:>5}", flush=True)
    small, large = str(min(sizes)), str(max(sizes))
    for name in ("spilled", "held"):
        ratio = results[name][large]["peak_rss_mb"] / results[name][small]["peak_rss_mb"]
        results.setdefault("rss_ratio", {})[name] = round(ratio, 2)
        per_conv = (results[name][large]["peak_rss_mb"] - results[name][small]["peak_rss_mb"]) * 1024 / (int(large) - int(small))
        results.setdefault("kb_per_conversation", {})[name] = round(per_conv, 2)
        print(f"peak RSS {large} / {small} ({name}): {ratio:.2f}x, {per_conv:.2f} KB per extra conversation")
    return results


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(json.dumps(run(), indent=1))
