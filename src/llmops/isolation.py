"""Isolated flow runs: each run works in its own workspace and publishes its results under one serial lock.

A run workspace is materialised from the project (its git-tracked files, or every file that is not a DVC
output when the project is not a git checkout) plus the DVC data of the project's ``dvc.lock``: checked
out from the shared DVC cache (the project's ``cache.dir``), or pulled from the DVC remote on a fresh
worker. The project's ``.venv``, DVC cache and run state are never copied. Overrides of a run are
validated first and written to the run workspace's params.yaml only.

What is shared between runs is written under :func:`serial`: the DVC remote (push, run cache), the
registry, the index alias and the project's published ``dvc.lock``. With a Prefect server
(``PREFECT_API_URL``) it is a Prefect global concurrency limit; without one, a file lock under
``LLMOPS_HOME``. A run that has to wait says so and waits; it never fails on "is busy".
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from llmops.config import Settings, apply_overrides
from llmops.errors import ConfigError
from llmops.reports.run import PublishSlot

log = logging.getLogger(__name__)

PUBLISH_LIMIT = "llmops-publish"
# Never materialised: environments, caches, run state, VCS metadata. DVC outputs are left out too (pulled).
_SKIP = {".venv", ".git", ".llmops", ".pytest_cache", "__pycache__", ".mypy_cache", ".ruff_cache", "node_modules"}


def _dvc_outputs(project: Path) -> set[str]:
    """Paths dvc.yaml declares as outputs, metrics and plots (relative, normalised)."""
    spec = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8")) or {}
    found: set[str] = set()
    for stage in (spec.get("stages") or {}).values():
        for key in ("outs", "metrics", "plots"):
            for item in stage.get(key) or []:
                path = next(iter(item)) if isinstance(item, dict) else item
                found.add(os.path.normpath(str(path)))
    return found


def source_files(project: Path) -> list[Path]:
    """The project's files a run needs, relative to it: git's tracked and untracked-but-not-ignored files
    in a git checkout (what the user sees, uncommitted edits included); else every file that is not a DVC
    output, state or environment."""
    if (project / ".git").exists() and shutil.which("git"):
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=project,
            capture_output=True,
            check=True,
        ).stdout.decode()
        files = [Path(p) for p in out.split("\0") if p]
        return [p for p in files if (project / p).is_file() and not p.parts[0] == ".dvc"]
    outputs = _dvc_outputs(project)
    files = []
    for root, dirs, names in os.walk(project):
        rel = Path(root).relative_to(project)
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in _SKIP and not (rel == Path(".") and d == ".dvc") and os.path.normpath(rel / d) not in outputs
        )
        files += [rel / n for n in sorted(names) if os.path.normpath(rel / n) not in outputs]
    return [p for p in files if not p.name.endswith(".pyc")]


def shared_cache_dir(project: Path) -> str:
    """The project's DVC cache directory (its ``cache.dir``, default ``.dvc/cache``), shared by its runs."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        return str(repo.cache.local_cache_dir)


def materialise(project: Path, dest: Path) -> Path:
    """Create a run workspace at ``dest``: the project's files (see :func:`source_files`), its dvc.lock,
    and a DVC repo whose cache is the project's (links when the file system allows, else copies)."""
    project = project.resolve()
    if not (project / "dvc.yaml").exists():
        raise ConfigError(f"{project} has no dvc.yaml: run from the project root or pass --project-dir")
    cache = shared_cache_dir(project)
    dest.mkdir(parents=True, exist_ok=False)
    for rel in source_files(project):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(project / rel, target)
    if (project / "dvc.lock").exists():
        shutil.copy2(project / "dvc.lock", dest / "dvc.lock")
    (dest / ".dvc").mkdir(exist_ok=True)
    for name in ("config", ".gitignore"):
        if (project / ".dvc" / name).exists():
            shutil.copy2(project / ".dvc" / name, dest / ".dvc" / name)
    # The run workspace is no git checkout; outputs are linked from the shared cache (DVC removes a linked
    # output before its stage reruns, so the cache is never written through a link).
    from configobj import ConfigObj

    config = ConfigObj(str(dest / ".dvc" / "config"))
    config.setdefault("core", {})["no_scm"] = "true"
    config.setdefault("cache", {}).update({"dir": cache, "type": "reflink,hardlink,copy"})
    config.write()
    return dest


def prepare_params(workspace: Path, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Apply a run's overrides to the run workspace's params.yaml (validated before; see config)."""
    if not overrides:
        return {}
    return apply_overrides(workspace / "params.yaml", overrides)


def check_overrides(project: Path, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Validate overrides against the project's params.yaml (on a scratch copy: the project's file is
    never written); a bad key or value is a :class:`ConfigError` naming it. Returns the parsed values."""
    import tempfile

    if not overrides:
        return {}
    with tempfile.TemporaryDirectory(prefix="llmops-params-") as tmp:
        scratch = Path(tmp) / "params.yaml"
        shutil.copyfile(project / "params.yaml", scratch)
        try:
            return apply_overrides(scratch, overrides)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(str(scratch), "params.yaml") + " (nothing was run)") from exc


def publish_lock(project: Path, workspace: Path, stages: list[str]) -> list[str]:
    """Merge the run's dvc.lock entries of ``stages`` into the project's dvc.lock (written atomically),
    then check the project's outputs out of the shared cache. Other stages keep the project's entries
    (another run may have published them). Returns the stages published. Call under :func:`serial`."""
    from dvc.repo import Repo

    run_lock = yaml.safe_load((workspace / "dvc.lock").read_text(encoding="utf-8")) if (workspace / "dvc.lock").exists() else {}
    entries = (run_lock or {}).get("stages", {})
    path = project / "dvc.lock"
    current = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.exists() else {}
    merged = {"schema": run_lock.get("schema", current.get("schema", "2.0")), "stages": dict(current.get("stages") or {})}
    published = [s for s in stages if s in entries]
    for stage in published:
        merged["stages"][stage] = entries[stage]
    if not published:
        return []
    # Keep dvc.yaml's stage order, as DVC writes it.
    order = list((yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8")) or {}).get("stages", {}))
    rank = {name: i for i, name in enumerate(order)}
    merged["stages"] = {k: merged["stages"][k] for k in sorted(merged["stages"], key=lambda k: (rank.get(k, len(rank)), k))}
    tmp = path.with_name(f".dvc.lock.{os.getpid()}.tmp")
    tmp.write_text(yaml.safe_dump(merged, sort_keys=False, allow_unicode=True), encoding="utf-8")
    os.replace(tmp, path)
    with Repo(str(project)) as repo:
        repo.checkout(force=True, allow_missing=True)
    from llmops.data.purge import protect_private

    protect_private(project)  # checkout wrote the outputs with the umask: personal data stays owner-only
    return published


@contextmanager
def serial(settings: Settings, what: str, name: str = PUBLISH_LIMIT) -> Iterator[PublishSlot]:
    """Hold the one slot of ``name`` for the block. Yields its ``waited_s`` and ``acquired``; ``released`` is
    set on the way out (a run summary keeps them: serial sections of two runs never overlap).

    A Prefect global concurrency limit (created with limit 1 when missing) when a Prefect server is
    configured (``PREFECT_API_URL``), so runs on different workers wait for each other; else an flock
    under LLMOPS_HOME, which the kernel releases when its holder dies."""
    start = time.monotonic()
    slot = PublishSlot(limit=name)
    with _acquire(settings, what, name):
        slot.waited_s, slot.acquired = round(time.monotonic() - start, 2), datetime.now(UTC).isoformat()
        try:
            yield slot
        finally:
            slot.released = datetime.now(UTC).isoformat()


@contextmanager
def _acquire(settings: Settings, what: str, name: str) -> Iterator[None]:
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():  # a Prefect server (env, profile or test harness), not the ephemeral API
        from prefect.concurrency.sync import concurrency

        if _ensure_limit(name):
            print(f"{what}: waiting for the '{name}' concurrency slot (another run holds it)")
        with concurrency(name, occupy=1, strict=True):
            yield
        return
    path = settings.path("locks", f"{name}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            print(f"{what}: waiting for {path} (held by {fh.read().strip() or 'another run'})")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()}: {what}\n")
            fh.flush()
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def _ensure_limit(name: str) -> bool:
    """Create the global concurrency limit ``name`` (limit 1) if missing; True when its slot is taken now."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            except ObjectAlreadyExists:
                pass  # another run created it first
            limit = client.read_global_concurrency_limit_by_name(name)
    return limit.active_slots >= limit.limit


@dataclass
class IsolatedRun:
    """One flow run's workspace and record (see :func:`isolated_run`)."""

    project: Path
    workspace: Path
    flow: str
    run_id: str
    started: datetime
    record: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    stage: str | None = None

    def at(self, stage: str | None) -> None:
        """Note the stage the run is in (a crash is recorded against it)."""
        from llmops.runs.records import update_record

        self.stage = stage
        update_record(self.record, stage=stage)


@contextmanager
def isolated_run(
    project_dir: str | Path, settings: Settings, *, flow: str, run_id: str, overrides: dict[str, Any] | None = None
) -> Iterator[IsolatedRun]:
    """Validate the overrides, record the run as running, materialise its workspace (under
    ``LLMOPS_HOME/workspaces``), apply the overrides there, and yield it. A run that raises is recorded
    ("failed" on an error, "crashed" on a signal) with its stage and error. The workspace is removed
    either way: it holds pre-redaction data (personal data), which must not outlive `llmops pii purge`."""
    from llmops.reports.run import RunState
    from llmops.runs import records

    project = Path(project_dir).resolve()
    changed = check_overrides(project, overrides)  # before anything runs or is written
    started = datetime.now(UTC)
    record = records.start_record(settings, flow=flow, run_id=run_id, started=started, overrides=changed)
    dest = settings.path("workspaces", f"{started.strftime('%Y%m%dT%H%M%S')}-{flow}-{run_id[:8]}")
    run = IsolatedRun(project, dest, flow, run_id, started, record, changed)
    try:
        records.update_record(record, stage="materialise", workspace=str(dest))
        materialise(project, dest)
        prepare_params(dest, overrides)
        print(f"{flow} run {run_id}: workspace {dest}" + (f", overrides {changed}" if changed else ""))
        run.at(None)
        yield run
    except BaseException as exc:
        state: RunState = "failed" if isinstance(exc, Exception) else "crashed"
        stage = getattr(exc, "stage", None) or run.stage
        records.record_failure(settings, record, state=state, stage=stage, error=exc, render=state == "failed")
        raise
    finally:
        shutil.rmtree(dest, ignore_errors=True)
