"""When to retrain, and one retrain at a time.

Weekly schedule, ``llmops retrain --reason`` and the monitor flow all go through :func:`should_retrain`:
training is skipped (with a reason) when fewer than ``retrain.min_new_examples`` training examples
arrived since the champion's data and the fine-tune params are the champion's -- a new model from the
same data and the same recipe cannot be better, only cost compute. ``force`` overrides.

"Arrived" is by content, not by timestamp: each training example has an ``example_id`` (a hash of its
source, group and answer, in ``provenance.jsonl``), and a registered model keeps the ids of its training
split in the registry (:func:`save_training_ids`, ``lineage/<model_id>/train-ids.txt.gz``, ~17 bytes an
example). New examples are the training-split ids the reference model did not train on -- whatever their
``created_at`` says (source data may be stamped in the future, or arrive late with an old date). A model
registered before ids were kept falls back to ``created_at`` after its ``data_until``.

:func:`run_lock` keeps a second retrain in the same state dir from starting while one runs (the Prefect
deployment also has ``concurrency_limit: 1``; this guard covers local runs and other launchers).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from llmops.config import RetrainParams
from llmops.errors import RunLocked
from llmops.finetune.registry import ModelRecord, Registry

TRAINING_IDS = "train-ids.txt.gz"  # in the registry, under lineage/<model_id>/


@dataclass
class RetrainDecision:
    run: bool
    reason: str
    new_examples: int | None = None


def _parse(ts: str | None) -> datetime | None:
    if not ts:
        return None
    dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def data_until(provenance: Path) -> str | None:
    """The newest ``created_at`` among training examples (stored with a model as where its data ends)."""
    if not provenance.exists():
        return None
    with provenance.open(encoding="utf-8") as fh:
        stamps = [_parse(json.loads(line).get("created_at")) for line in fh if line.strip()]
    known = [s for s in stamps if s is not None]
    return max(known).isoformat() if known else None


def count_new_examples(provenance: Path, since: datetime | None) -> int:
    """Training-split examples (``provenance.jsonl`` of the trainset stage) created after ``since``."""
    if not provenance.exists():
        return 0
    n = 0
    with provenance.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            created = _parse(row.get("created_at"))
            if row.get("split") == "train" and (since is None or (created is not None and created > since)):
                n += 1
    return n


def training_ids(provenance: Path) -> set[str]:
    """The ``example_id`` of every training-split example in a ``provenance.jsonl`` (rows without one: none)."""
    if not provenance.exists():
        return set()
    ids: set[str] = set()
    with provenance.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                if row.get("split") == "train" and row.get("example_id"):
                    ids.add(row["example_id"])
    return ids


def save_training_ids(registry: Registry, model_id: str, provenance: Path) -> int:
    """Keep the training-split ids ``model_id`` was trained on in the registry (once: a model's data does not
    change); returns how many. Nothing is written when the provenance has no ids (an older trainset)."""
    if registry.read_lineage(model_id, TRAINING_IDS) is not None:
        return -1
    ids = training_ids(provenance)
    if ids:
        registry.write_lineage(model_id, TRAINING_IDS, gzip.compress("\n".join(sorted(ids)).encode(), mtime=0))
    return len(ids)


def load_training_ids(registry: Registry, model: ModelRecord | None) -> set[str] | None:
    """The training-split ids ``model`` was trained on (None: not kept, e.g. registered before ids existed)."""
    if model is None or model.backend == "base":
        return None
    data = registry.read_lineage(model.model_id, TRAINING_IDS)
    return set(gzip.decompress(data).decode().split()) if data is not None else None


def count_unseen_examples(provenance: Path, trained: set[str]) -> int:
    """Training-split examples whose ``example_id`` is not in ``trained`` (rows without an id count as new)."""
    if not provenance.exists():
        return 0
    n = 0
    with provenance.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                n += row.get("split") == "train" and row.get("example_id") not in trained
    return n


def recipe_reference(models: list[ModelRecord], champion: ModelRecord | None) -> ModelRecord | None:
    """The trained model a retrain is compared with: the champion, or -- while the champion is the base model
    (no adapter) -- the newest trained model, promoted or not. An adapter the gate rejected was trained on its
    data with its recipe: training again on the same data with the same recipe cannot do better."""
    if champion is not None and champion.backend != "base":
        return champion
    trained = [m for m in models if m.backend != "base"]
    return max(trained, key=lambda m: m.created_at) if trained else None


def should_retrain(
    provenance: Path,
    champion: ModelRecord | None,
    params_hash: str,
    cfg: RetrainParams,
    *,
    force: bool = False,
    trained_ids: set[str] | None = None,
) -> RetrainDecision:
    """Enough new examples since the reference model's data (the champion, see :func:`recipe_reference`), or a
    changed recipe, or forced (see module docstring). ``trained_ids``: the reference model's training-split
    ids (:func:`load_training_ids`); None: new means created after its ``data_until``."""
    if champion is None:
        return RetrainDecision(True, "no champion yet")
    if champion.backend == "base":
        return RetrainDecision(True, "no trained model yet (the champion is the base model)")
    role = "champion" if champion.status == "champion" else f"latest trained model, {champion.status}"
    if trained_ids is not None:
        n = count_unseen_examples(provenance, trained_ids)
        basis = f"{n} new training examples (not in the training data of {role} {champion.model_id})"
    else:
        since = _parse(champion.training.get("data_until")) or champion.created_at
        n = count_new_examples(provenance, since)
        basis = f"{n} new training examples since {since:%Y-%m-%d %H:%M} ({role} {champion.model_id})"
    if force:
        return RetrainDecision(True, f"forced; {basis}", n)
    if n >= cfg.min_new_examples:
        return RetrainDecision(True, f"{basis} >= retrain.min_new_examples {cfg.min_new_examples}", n)
    if params_hash != champion.params_hash:
        return RetrainDecision(True, f"fine-tune params changed since {champion.model_id}; {basis}", n)
    return RetrainDecision(
        False,
        f"skipped: only {basis} < retrain.min_new_examples {cfg.min_new_examples}, and the fine-tune params are "
        "unchanged (use --force to retrain anyway)",
        n,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def run_lock(path: Path, what: str = "retrain") -> Iterator[None]:
    """Hold ``path`` exclusively for the block; a lock left by a dead process is taken over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                holder = json.loads(path.read_text(encoding="utf-8") or "{}")
            except (OSError, json.JSONDecodeError):
                holder = {}
            if holder.get("pid") and _alive(int(holder["pid"])):
                raise RunLocked(
                    f"another {what} is running (pid {holder['pid']}, since {holder.get('since')}); wait for it, or "
                    f"delete {path} if that process is gone"
                ) from None
            path.unlink(missing_ok=True)  # stale: its process is gone
    else:  # pragma: no cover - lost the race twice
        raise RunLocked(f"could not take {path}: another {what} keeps starting")
    with os.fdopen(fd, "w") as fh:
        json.dump({"pid": os.getpid(), "since": datetime.now(UTC).isoformat()}, fh)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
