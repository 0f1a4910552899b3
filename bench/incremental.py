"""Nightly cost after a 1% append: each data stage run twice on an archive built from ../shared/data (twitter-
customer-care dialogues, bitext and banking77 queries; beyond the sources' ~15k, repeated with fresh ids and a
marked first turn, so the clean stage does not drop them as duplicates), once on the whole archive (first run,
empty caches) and once after 1% new conversations arrived (a new day; spread over the archive, so they have its
mix of sources: :func:`write_arrivals`). Per stage: wall seconds, CPU seconds and peak RSS of the stage process
(``os.wait4``: the process and the children it waited for), and the processed/reused counts from
``metrics/<stage>.json``, side by side.

Each stage runs as DVC runs it (``python -m pipelines.<stage>`` in a scratch copy of the workspace with its
own LLMOPS_HOME). ``INCREMENTAL_BENCH_SIZES`` (default ``10000,100000``) and ``INCREMENTAL_BENCH_STAGES``
(default ``ingest,clean,redact,trainset,monitor``) pick what runs; ``INCREMENTAL_BENCH_REDACT_MAX`` (default 20000)
skips the redact stage on larger archives (~9 ms CPU per conversation: ~15 min at 100k on 2 loaded cores), and
``INCREMENTAL_BENCH_TRAINSET_MAX`` (default 100000) the trainset stage (its full run retrieves the serving
context of every distinct candidate question: ~35 CPU s at 10k, ~80 at 100k, where the sources' later rounds
fall out as near duplicates before retrieval).
Per stage also the start cost (CPU of a process that only imports the stage's entrypoint) and the fixed cost
(a process that also reads params and loads the libraries and models the stage loads for a first new record:
the detector, Evidently, the embedder, the tokenizer), and the +1% share with and without each: without the
fixed cost it is the share of the work that follows the records. The floor is what any process running the
stage costs whatever our code does (the interpreter, one pydantic model validated, and Evidently's import for
the monitor), as a share of the full run: no +1% run can cost less. The monitor's first run already compares
a window of days, not the archive: its "full run" is also measured with the whole archive as the window
(what it compared before the window was the new batch; ``INCREMENTAL_BENCH_ARCHIVE_MONITOR=0`` skips it),
and the +1% run's share of that is printed. On each larger archive a third run follows another arrival of the
smallest archive's +1% batch (100 conversations at the default sizes; ``INCREMENTAL_BENCH_SAME_BATCH=0`` skips
it): the same night's new data on a 10x larger archive, CPU side by side.
The trainset stage needs the index, the curated feedback and the gate set (their stages run once per size,
unmeasured, before its first run) and the base model's tokenizer (``.pytest_cache/d/llmops-models``, converted
by the test suite); without the redact stage the monitor and the trainset read the clean partitions, with
documents and feedback redacted once in a side workspace. ``INCREMENTAL_BENCH_SIZES=sample`` runs the shipped
sample through every data stage with ``dvc repro -s`` instead (see :func:`sample`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared/data"
MODELS = ROOT / ".pytest_cache/d/llmops-models"  # the base model (tokenizer) the test suite converted


def _sources() -> list:
    from llmops.data.sources import banking77_conversations, bitext_conversations, twitter_conversations

    return [
        *twitter_conversations(DATA / "twitter-customer-care-cdp/dev.json"),
        *bitext_conversations(DATA / "bitext-customer-support/Bitext_Sample_Customer_Support_Training_Dataset.csv"),
        *banking77_conversations(DATA / "banking77/train.csv"),
    ]


def _copy(conv: Any, conversation_id: str, mark: str | None = None, created_at: datetime | None = None) -> str:
    """A JSONL line of ``conv`` under a new id; ``mark`` appended to its first turn (new text: the clean stage
    does not drop it as a duplicate of the original), ``created_at`` when it arrives on a given day."""
    update: dict = {"conversation_id": conversation_id}
    if mark:
        first = conv.turns[0].model_copy(update={"text": f"{conv.turns[0].text} ({mark})"})
        update["turns"] = [first, *conv.turns[1:]]
    if created_at is not None:
        update["created_at"] = created_at
    return conv.model_copy(update=update).model_dump_json(exclude_none=True) + "\n"


def write_archive(path: Path, n: int) -> None:
    """``n`` conversations with their sources' dates (ids ``<source id>~<round>``; beyond the first round of the
    sources, a marked first turn)."""
    base = _sources()
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            conv, rnd = base[i % len(base)], i // len(base)
            fh.write(_copy(conv, f"{conv.conversation_id}~{rnd}", f"case {rnd}" if rnd else None))


def write_arrivals(path: Path, n: int, m: int, day: datetime, tag: str = "new") -> None:
    """Append ``m`` new conversations created on ``day`` to an archive of ``n`` (:func:`write_archive`), spread
    evenly over it: copies of every ``n/m``-th archive conversation, so the new batch has the archive's mix of
    sources (Twitter dialogues, Bitext question/answer pairs, single banking77 queries without an answer).
    Each gets a new id and a marked first turn; another ``tag`` for each batch appended to the same archive."""
    base = _sources()
    with path.open("a", encoding="utf-8") as fh:
        for j in range(m):
            conv = base[(j * n // m) % len(base)]
            fh.write(_copy(conv, f"{conv.conversation_id}~{tag}{j}", f"{tag} {j}", day + timedelta(seconds=j % 86400)))


def _workspace(dest: Path) -> None:
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, dest / name)
    for name in ("pipelines", "src"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "data/sample", dest / "data/sample")


def _stage(ws: Path, stage: str, env: dict[str, str]) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", f"pipelines.{stage}"], cwd=ws, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{stage} failed: {err[-2000:]}")
    out = {
        "seconds": round(time.perf_counter() - start, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }
    metrics = ws / "metrics" / f"{stage}.json"
    if stage != "monitor" and metrics.exists():
        conv = json.loads(metrics.read_text())["conversations"]
        out |= {"processed": conv.get("processed"), "reused": conv.get("reused")}
    elif stage == "monitor":
        drift = json.loads((ws / "reports/drift/drift.json").read_text())
        out |= {"current_rows": drift.get("current_rows"), "skipped": drift.get("skipped")}
    return out


def _probe(ws: Path, code: str, env: dict[str, str], runs: int) -> list[float]:
    """CPU seconds of ``runs`` processes that each run ``code`` in the workspace and stop."""
    costs = []
    for _ in range(runs):
        proc = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ws, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"a cost probe failed: {code}")
        costs.append(usage.ru_utime + usage.ru_stime)
    return costs


def _start_cost(ws: Path, stage: str, env: dict[str, str], runs: int = 3) -> float:
    """CPU seconds of a stage process that starts the interpreter and imports its entrypoint, then stops: the
    part of every run that no reuse removes (median of ``runs``)."""
    costs = _probe(ws, f"import pipelines.{stage}", env, runs)
    return round(sorted(costs)[len(costs) // 2], 2)


# The least any process running a stage costs, whatever our code does: the interpreter and one pydantic model
# validated (every stage reads and writes the record contracts of llmops.records, which are pydantic models),
# and for the monitor Evidently's import (its report is the stage's output).
_FLOOR_CODE = "from pydantic import BaseModel\nclass Record(BaseModel):\n    text: str\nRecord(text='x')"
_FLOOR_EXTRA = {"monitor": "import evidently"}


def _floor_cost(ws: Path, stage: str, env: dict[str, str], runs: int = 3) -> float:
    """CPU seconds of :data:`_FLOOR_CODE` (plus the stage's :data:`_FLOOR_EXTRA`) in a process: a lower bound
    of any run of ``stage`` as DVC starts it (the smallest of ``runs``)."""
    code = "\n".join([_FLOOR_CODE, *([_FLOOR_EXTRA[stage]] if stage in _FLOOR_EXTRA else [])])
    return round(min(_probe(ws, code, env, runs)), 2)


# What a stage loads for its first new record, whatever the number of records: the detector (redact; the
# trainset's leak scan), the embedding model and Evidently (monitor), the serving embedder and the base
# model's tokenizer (trainset). Ingest and clean load nothing beyond their imports.
_LOADS = {
    "redact": ["detector"],
    "monitor": ["evidently", "embedder"],
    "trainset": ["embedder", "tokenizer", "detector"],
}
_LOAD_CODE = {
    "detector": "from llmops.pii.redact import Redactor; Redactor(p.redact).analyze(['Call John Smith on 415-555-0132'])",
    "evidently": "import evidently, evidently.presets",
    "embedder": "from llmops.index.embed import make_embedder; make_embedder(p.index.embedder, p.index, s).embed(['parcel?'])",
    "tokenizer": "from llmops.finetune.validate import base_token_counter; base_token_counter(s.base_model_cache)",
}


def _fixed_cost(ws: Path, stage: str, env: dict[str, str], runs: int = 2) -> float:
    """CPU seconds of a process that does what a run of ``stage`` does whatever its input: start the
    interpreter, import the entrypoint, read params and settings, and load the libraries and models the
    stage loads for its first new record (:data:`_LOADS`), then stop without processing anything (the
    smaller of ``runs``: fixed costs only fall with noise)."""
    code = [f"import pipelines.{stage}", "from pipelines._stage import setup", f"p, s = setup({stage!r})"]
    code += [_LOAD_CODE[name] for name in _LOADS.get(stage, [])]
    return round(min(_probe(ws, "\n".join(code), env, runs)), 2)


def _archive_monitor(ws: Path, env: dict[str, str], home: Path) -> dict:
    """The monitor as it was before the new-batch window: the whole archive as the current window (a first
    run with ``monitor.current_days`` covering every day, empty caches)."""
    import yaml

    params = ws / "params.yaml"
    original = params.read_text()
    cfg = yaml.safe_load(original)
    cfg["monitor"]["current_days"] = 100_000
    try:
        params.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return _stage(ws, "monitor", {**env, "LLMOPS_HOME": str(home)})
    finally:
        params.write_text(original)


def _redacted_stand_in(ws: Path, env: dict[str, str]) -> None:
    """Without the redact stage (large archives), the monitor and the training set read the clean partitions as
    their input. The documents and feedback are redacted (the index refuses personal data): by the redact stage
    in a side copy of the workspace without conversations, once (they do not change with the archive)."""
    red = ws / "data/redacted"
    side = ws.parent / "redact-side"
    if not (side / "data/redacted/documents.jsonl").exists():
        side.mkdir(exist_ok=True)
        _workspace(side)
        shutil.copytree(ws / "data/clean", side / "data/clean", ignore=shutil.ignore_patterns("conversations", "_keys"))
        _prepare(side, "redact", {**env, "LLMOPS_HOME": str(side / "home"), "PYTHONPATH": f"{side / 'src'}:{side}"})
    if red.exists():
        shutil.rmtree(red)
    shutil.copytree(ws / "data/clean", red, ignore=shutil.ignore_patterns("_keys"))
    for name in ("documents.jsonl", "feedback.jsonl"):
        shutil.copy(side / "data/redacted" / name, red / name)


def _prepare(ws: Path, stage: str, env: dict[str, str]) -> None:
    """Run ``stage`` as DVC runs it, unmeasured (a prerequisite of a measured stage)."""
    proc = subprocess.run([sys.executable, "-m", f"pipelines.{stage}"], cwd=ws, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{stage} (prerequisite) failed: {proc.stderr[-2000:]}")


# What a measured stage reads besides the conversations: run once per size, unmeasured, before its first run.
# None of them depends on the conversations (dvc.yaml: feedback and index read data/redacted/feedback.jsonl and
# documents.jsonl, the gate set the eval questions), so the +1% run reuses them as DVC would.
PREREQUISITES = {"trainset": ["feedback", "index", "gateset"]}


def bench_size(n: int, stages: list[str], same_batch: int = 0) -> dict:
    """Full run, +1% run, and with ``same_batch`` a third run after that many more new conversations (the
    +1% batch of a smaller archive: the same night's work on a larger archive)."""
    with tempfile.TemporaryDirectory(prefix=f"incremental-{n}-") as tmp:
        ws = Path(tmp) / "ws"
        ws.mkdir()
        _workspace(ws)
        env = {
            **os.environ,
            "LLMOPS_HOME": str(Path(tmp) / "home"),
            "PYTHONPATH": f"{ws / 'src'}:{ws}",
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            **({"LLMOPS_MODEL_CACHE": str(MODELS)} if MODELS.exists() else {}),  # the trainset's tokenizer
        }
        source = ws / "data/sample/conversations.jsonl"
        write_archive(source, n)
        ready: set[str] = set()

        def run_all() -> dict:
            out = {}
            for s in stages:
                if s in ("monitor", "trainset") and "redact" not in stages:
                    _redacted_stand_in(ws, env)
                for pre in PREREQUISITES.get(s, []):
                    if pre not in ready:
                        _prepare(ws, pre, env)
                        ready.add(pre)
                out[s] = _stage(ws, s, env)
            return out

        full = run_all()
        arrival = datetime(2026, 12, 5, tzinfo=UTC)
        write_arrivals(source, n, max(1, n // 100), arrival)
        append = run_all()
        out = {"full": full, "append_1pct": append, "monitor_input": "redacted" if "redact" in stages else "clean"}
        if same_batch:
            write_arrivals(source, n, same_batch, arrival + timedelta(days=1), tag="more")
            out["append_same_batch"] = {"conversations": same_batch, **run_all()}
        out["start_cpu_s"] = {s: _start_cost(ws, s, env) for s in stages}
        out["fixed_cpu_s"] = {s: _fixed_cost(ws, s, env) for s in stages}
        out["floor_cpu_s"] = {s: _floor_cost(ws, s, env) for s in stages}
        if "monitor" in stages and os.environ.get("INCREMENTAL_BENCH_ARCHIVE_MONITOR", "1") != "0":
            out["monitor_whole_archive"] = _archive_monitor(ws, env, Path(tmp) / "home-archive")
        return out


DATA_STAGES = ["ingest", "clean", "redact", "feedback", "index", "gateset", "trainset", "monitor"]


def sample(n_new: int = 5) -> dict:
    """The shipped sample through every data stage with ``dvc repro -s`` (the stages the nightly runs before
    fine-tuning, and the monitor), then ``n_new`` new conversations (a new day) and again: per stage whether
    DVC ran it, its seconds and processed/reused counts; then the retrain policy for a champion trained on the
    first training set (what the flows ask before fine-tuning)."""
    from bench.nightly_rerun import append_conversations
    from llmops.config import load_params
    from llmops.finetune.policy import data_until, should_retrain
    from llmops.finetune.registry import ModelRecord, params_hash

    with tempfile.TemporaryDirectory(prefix="incremental-sample-") as tmp:
        ws = Path(tmp) / "ws"
        ws.mkdir()
        _workspace(ws)
        subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=ws, check=True)
        models = MODELS
        env = {
            **os.environ,
            "LLMOPS_HOME": str(Path(tmp) / "home"),
            "PYTHONPATH": f"{ws / 'src'}:{ws}",
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            **({"LLMOPS_MODEL_CACHE": str(models)} if models.exists() else {}),
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",  # dvc runs `python -m ...`
        }

        def repro() -> dict:
            out = {}
            for stage in DATA_STAGES:
                start = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-m", "dvc", "repro", "-s", stage], cwd=ws, env=env, capture_output=True, text=True
                )
                if proc.returncode != 0:
                    raise RuntimeError(f"dvc repro {stage} failed: {proc.stdout[-1500:]}{proc.stderr[-1500:]}")
                ran = "didn't change" not in proc.stdout and "skipping" not in proc.stdout.lower()
                row: dict = {"ran": ran, "seconds": round(time.perf_counter() - start, 1)}
                metrics = ws / "metrics" / f"{stage}.json"
                if ran and stage != "monitor" and metrics.exists():
                    conv = json.loads(metrics.read_text()).get("conversations", {})
                    row |= {k: conv[k] for k in ("processed", "reused", "deleted") if k in conv}
                if ran and stage == "monitor":
                    drift = json.loads((ws / "reports/drift/drift.json").read_text())
                    row |= {"current_rows": drift.get("current_rows"), "skipped": drift.get("skipped")}
                out[stage] = row
            return out

        first = repro()
        provenance = ws / "data/trainset/provenance.jsonl"
        params = load_params(ws / "params.yaml")
        champion = ModelRecord(
            model_id="champion-of-the-first-run",
            base_model=params.finetune.base_model,
            data_rev="first",
            params_hash=params_hash(params.finetune.model_dump()),
            training={"data_until": data_until(provenance)},
        )
        source = ws / "data/sample/conversations.jsonl"
        append_conversations(source, n_new)
        cache = ws / ".dvc/cache"

        def objects() -> dict[str, int]:
            return {str(p): p.stat().st_size for p in cache.rglob("*") if p.is_file()}

        before = objects()
        second = repro()
        added = {k: v for k, v in objects().items() if k not in before}
        decision = should_retrain(provenance, champion, champion.params_hash, params.retrain)
        return {
            "first": first,
            "after_append": second,
            "retrain": {"run": decision.run, "reason": decision.reason},
            "dvc_cache": {
                "objects_before": len(before),
                "bytes_before": sum(before.values()),
                "objects_added": len(added),
                "bytes_added": sum(added.values()),
                "added_by_path": _cache_paths(ws, added),
            },
        }


def _cache_paths(ws: Path, added: dict[str, int]) -> dict[str, int]:
    """Which workspace files the cache objects added by a run hold (bytes per path; a directory's listing
    object appears as ``<dir> (listing)``): what a night stores in the DVC cache and pushes to the remote."""
    import hashlib

    by_md5: dict[str, str] = {}
    for p in ws.rglob("*"):
        rel = p.relative_to(ws)
        if p.is_file() and rel.parts[0] not in (".dvc", "src", "pipelines"):
            by_md5.setdefault(hashlib.md5(p.read_bytes()).hexdigest(), str(rel))
    out: dict[str, int] = {}
    for obj, size in sorted(added.items(), key=lambda kv: -kv[1]):
        rel = Path(obj).relative_to(ws / ".dvc/cache")
        digest = "".join(rel.parts[-2:]).removesuffix(".dir")
        name = by_md5.get(digest, "(not in the workspace)") + (" (listing)" if obj.endswith(".dir") else "")
        out[name] = out.get(name, 0) + size
    return out


def run() -> dict:
    from llmops.runtime import OFFLINE_ENV

    for k, v in OFFLINE_ENV.items():
        os.environ.setdefault(k, v)
    if os.environ.get("INCREMENTAL_BENCH_SIZES") == "sample":
        res = sample()
        print(f"{'stage':<9} {'ran':>4} {'s':>7} {'counts':>26} | {'ran':>4} {'s':>7} {'counts (+5 new)':>26}")
        for stage in DATA_STAGES:
            a, b = res["first"][stage], res["after_append"][stage]

            def counts(r: dict) -> str:
                if "current_rows" in r:
                    return f"rows {r['current_rows']}" + (" skipped" if r.get("skipped") else "")
                return f"{r.get('processed', '-')}/{r.get('reused', '-')}/{r.get('deleted', '-')}"

            left = f"{a['ran']!s:>4} {a['seconds']:>7.1f} {counts(a):>26}"
            right = f"{b['ran']!s:>4} {b['seconds']:>7.1f} {counts(b):>26}"
            print(f"{stage:<9} {left} | {right}")
        total = [sum(r["seconds"] for r in res[k].values()) for k in ("first", "after_append")]
        print(f"total: {total[0]:.0f} s, then {total[1]:.0f} s; retrain policy: {res['retrain']['reason']}")
        cache = {k: v for k, v in res["dvc_cache"].items() if k != "added_by_path"}
        print(f"DVC cache after the first run / added by the second: {cache}")
        for path, size in res["dvc_cache"]["added_by_path"].items():
            print(f"  added {size:>10,} bytes  {path}")
        return res
    sizes = [int(x) for x in os.environ.get("INCREMENTAL_BENCH_SIZES", "10000,100000").split(",")]
    stages = os.environ.get("INCREMENTAL_BENCH_STAGES", "ingest,clean,redact,trainset,monitor").split(",")
    size_max = {
        "redact": int(os.environ.get("INCREMENTAL_BENCH_REDACT_MAX", "20000")),
        "trainset": int(os.environ.get("INCREMENTAL_BENCH_TRAINSET_MAX", "100000")),
    }
    results: dict = {}
    for n in sizes:
        run_stages = [s for s in stages if n <= size_max.get(s, n)]
        print(f"\n{n} conversations: {', '.join(run_stages)}", flush=True)
        # the smallest archive's +1% batch, also appended to each larger one (INCREMENTAL_BENCH_SAME_BATCH=0: not)
        same = min(sizes) // 100 if n > min(sizes) and os.environ.get("INCREMENTAL_BENCH_SAME_BATCH", "1") != "0" else 0
        results[str(n)] = res = bench_size(n, run_stages, same)
        print(
            f"{'stage':<9} {'full s':>8} {'+1% s':>8} {'full cpu':>9} {'+1% cpu':>8} {'cpu %':>6} {'start':>6} "
            f"{'% w/o':>6} {'fixed':>6} {'% w/o':>6} {'floor':>6} {'floor%':>6} {'full MB':>8} {'+1% MB':>7} "
            f"{'processed/reused (+1%)':>24}"
        )
        for s in run_stages:
            f, a = res["full"][s], res["append_1pct"][s]
            start, fixed, floor = res["start_cpu_s"][s], res["fixed_cpu_s"][s], res["floor_cpu_s"][s]
            counts = f"{a.get('processed')}/{a.get('reused')}" if s != "monitor" else f"rows {a.get('current_rows')}"
            # cpu %: the +1% run's CPU as a share of the full run's; then the same without the start cost
            # (interpreter and the entrypoint's imports) and without the fixed cost (start, params, and the
            # libraries and models loaded for a first new record) on either side: what follows the records;
            # floor %: the least any process running the stage costs (_floor_cost) as a share of the full run,
            # below which no +1% run can go
            share = 100 * a["cpu_s"] / f["cpu_s"]
            bare = 100 * max(a["cpu_s"] - start, 0) / max(f["cpu_s"] - start, 1e-9)
            marginal = 100 * max(a["cpu_s"] - fixed, 0) / max(f["cpu_s"] - fixed, 1e-9)
            res.setdefault("cpu_share_pct", {})[s] = {
                "with_start": round(share, 1),
                "without_start": round(bare, 1),
                "without_fixed": round(marginal, 1),
                "floor": round(100 * floor / f["cpu_s"], 1),
            }
            print(
                f"{s:<9} {f['seconds']:>8.1f} {a['seconds']:>8.1f} {f['cpu_s']:>9.1f} {a['cpu_s']:>8.1f} {share:>6.1f} "
                f"{start:>6.2f} {bare:>6.1f} {fixed:>6.2f} {marginal:>6.1f} {floor:>6.2f} {100 * floor / f['cpu_s']:>6.1f} "
                f"{f['peak_rss_mb']:>8.0f} "
                f"{a['peak_rss_mb']:>7.0f} {counts:>24}",
                flush=True,
            )
        if "monitor_whole_archive" in res:
            w, a = res["monitor_whole_archive"], res["append_1pct"]["monitor"]
            share = 100 * a["cpu_s"] / w["cpu_s"]
            res["cpu_share_pct"]["monitor_vs_whole_archive"] = round(share, 1)
            print(
                f"monitor, whole archive as the window (before the new-batch window): {w['cpu_s']:.1f} CPU s, "
                f"{w['seconds']:.1f} s, {w['peak_rss_mb']:.0f} MB, rows {w.get('current_rows')}; "
                f"the +1% run costs {share:.1f}% of it",
                flush=True,
            )
    if len(sizes) > 1:
        small, large = str(min(sizes)), str(max(sizes))
        if "append_same_batch" in results[large]:
            same = results[large]["append_same_batch"]
            print(f"\nthe same {same['conversations']} new conversations, CPU s on the {small} / {large} archive:")
            for s in stages:
                if s in same and s in results[small]["append_1pct"]:
                    a, b = results[small]["append_1pct"][s]["cpu_s"], same[s]["cpu_s"]
                    results.setdefault("same_batch_ratio", {})[s] = round(b / a, 2)
                    print(f"  {s}: {a:.1f} / {b:.1f} ({b / a:.2f}x)")
        print(f"\npeak RSS {large} / {small} (full run):")
        for s in stages:
            if s in results[small]["full"] and s in results[large]["full"]:
                ratio = results[large]["full"][s]["peak_rss_mb"] / results[small]["full"][s]["peak_rss_mb"]
                results.setdefault("rss_ratio", {})[s] = round(ratio, 2)
                print(f"  {s}: {ratio:.2f}x")
    return results
