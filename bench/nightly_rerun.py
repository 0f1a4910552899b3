"""The nightly twice on the shipped sample, the second time after a handful of new conversations
(``make bench B=nightly_rerun``, about an hour on 2 loaded cores; run on request only).

A throwaway clone of the committed project (``git clone``, the checkout's ``.venv`` linked, its own
``LLMOPS_HOME``) runs ``llmops run nightly`` (what ``make run`` runs), then ``NIGHTLY_RERUN_NEW`` (5)
conversations are appended to ``data/sample/conversations.jsonl`` as a new day's arrivals
(:func:`append_conversations`: answered sample conversations with a changed customer turn, stamped now),
and the nightly runs again. Per run: wall seconds, which stages ran (the run record), each stage's
``conversations`` counts (``metrics/<stage>.json``), the retrain decision, the monitor's window.
``LLMOPS_MODEL_CACHE`` is passed on when set (else the test suite's converted base model when present),
so neither run converts the base model.

To append by hand to a workspace instead: ``python bench/nightly_rerun.py append <project dir> [n]``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "clean", "redact", "feedback", "index", "gateset", "trainset", "finetune", "evaluate", "monitor")


def append_conversations(source: Path, n_new: int = 5, *, tag: str = "new") -> list[str]:
    """Append ``n_new`` conversations to ``source`` as arrivals of today (the sample mode of
    ``bench/incremental.py`` does the same): answered conversations of the file, each with its customer turns
    changed (``(follow-up i)``) so that they are new records, new ids, ``created_at`` now. Returns their ids."""
    sys.path.insert(0, str(ROOT / "src"))
    from llmops.records import Conversation

    lines = source.read_text(encoding="utf-8").splitlines()
    answered = [Conversation.model_validate_json(line) for line in lines[:-2] if '"agent"' in line][:n_new]
    arrival = datetime.now(UTC)
    ids = []
    with source.open("a", encoding="utf-8") as fh:
        for i, conv in enumerate(answered):
            turns = [
                t.model_copy(update={"text": f"{t.text} (follow-up {i})"}) if t.role == "customer" else t for t in conv.turns
            ]
            new = conv.model_copy(update={"conversation_id": f"{tag}-{i}", "created_at": arrival, "turns": turns})
            fh.write(new.model_dump_json(exclude_none=True) + "\n")
            ids.append(new.conversation_id)
    return ids


def _nightly(project: Path, env: dict[str, str], log: Path) -> dict:
    start = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run([str(project / ".venv/bin/llmops"), "run", "nightly"], cwd=project, env=env, stdout=fh, stderr=fh)
    seconds = round(time.perf_counter() - start, 1)
    if proc.returncode != 0:
        raise RuntimeError(f"llmops run nightly failed (exit {proc.returncode}): see {log}")
    records = sorted((Path(env["LLMOPS_HOME"]) / "runs").glob("*-nightly.json"))
    record = json.loads(records[-1].read_text()) if records else {}
    stages = {}
    for stage in STAGES:
        metrics = project / "metrics" / f"{stage}.json"
        if metrics.exists():
            conv = json.loads(metrics.read_text()).get("conversations")
            if isinstance(conv, dict):
                stages[stage] = {k: conv[k] for k in ("processed", "reused", "deleted") if k in conv}
    drift = project / "reports/drift/drift.json"
    monitor = json.loads(drift.read_text()) if drift.exists() else {}
    return {
        "seconds": seconds,
        "record": {k: record.get(k) for k in ("state", "stages", "skipped", "model") if k in record},
        "counts": stages,
        "monitor": {k: monitor.get(k) for k in ("current_rows", "skipped") if k in monitor},
    }


def run() -> dict:
    n_new = int(os.environ.get("NIGHTLY_RERUN_NEW", "5"))
    tmp = Path(tempfile.mkdtemp(prefix="nightly-rerun-"))
    try:
        project = tmp / "project"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(project)], check=True)
        (project / ".venv").symlink_to(ROOT / ".venv")
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=project, capture_output=True, text=True).stdout.strip()
        env = {
            **os.environ,
            "LLMOPS_HOME": str(project / ".llmops"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            # the clone's code, not the checkout's working tree that the linked venv's editable install points at
            "PYTHONPATH": str(project / "src"),
        }
        models = ROOT / ".pytest_cache/d/llmops-models"
        if "LLMOPS_MODEL_CACHE" not in env and models.exists():
            env["LLMOPS_MODEL_CACHE"] = str(models)
        first = _nightly(project, env, tmp / "first.log")
        print(f"first nightly ({head}): {first['seconds']:.0f} s", flush=True)
        new_ids = append_conversations(project / "data/sample/conversations.jsonl", n_new)
        second = _nightly(project, env, tmp / "second.log")
        print(f"after +{len(new_ids)} conversations: {second['seconds']:.0f} s ({second['seconds'] / first['seconds']:.0%})")
        for name, res in (("first", first), ("second", second)):
            print(f"{name}: counts {json.dumps(res['counts'])}")
            print(f"{name}: monitor {json.dumps(res['monitor'])}; record {json.dumps(res['record'], default=str)[:1500]}")
        return {
            "commit": head,
            "new": len(new_ids),
            "first": first,
            "second": second,
            "ratio": round(second["seconds"] / first["seconds"], 3),
        }
    finally:
        if os.environ.get("NIGHTLY_RERUN_KEEP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "append":
        print(
            "\n".join(
                append_conversations(
                    Path(sys.argv[2]) / "data/sample/conversations.jsonl", int(sys.argv[3]) if len(sys.argv) > 3 else 5
                )
            )
        )
    else:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(run(), indent=1, default=str))
