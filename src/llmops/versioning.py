"""DVC operations: run one stage (skipped when nothing changed), push to the remote, data revision.

Uses DVC's Python API in-process; each stage's command still runs as its own process.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llmops.config import Settings
from llmops.errors import ConfigError, StageError


@dataclass
class StageRun:
    stage: str
    ran: bool
    seconds: float


# DVC's loggers: its import gives each a console handler of its own.
_DVC_LOGGERS = ("dvc", "dvc_objects", "dvc_data")


def log_once() -> None:
    """DVC's lines ("Running stage ...", "Updating lock file ...") printed once, not twice. DVC's import gives
    its loggers console handlers of their own, and its records also reach the root logger's handlers (Prefect's
    console, in a flow run), so each line came out raw and again formatted. Where the root logger has a handler,
    DVC's own are removed and its lines come out once, in that handler's format; elsewhere (no handler to carry
    them) DVC keeps its own."""
    import logging

    from dvc.logger import LoggerHandler

    if not logging.getLogger().handlers:
        return
    for name in _DVC_LOGGERS:
        dvc_log = logging.getLogger(name)
        for handler in [h for h in dvc_log.handlers if isinstance(h, LoggerHandler)]:
            dvc_log.removeHandler(handler)


def _repo(project_dir: Path) -> Any:
    from dvc.repo import Repo

    log_once()
    if not (project_dir / ".dvc").is_dir():
        raise ConfigError(f"{project_dir} is not a DVC project (no .dvc/): run from the project root")
    return Repo(str(project_dir))


def configure_remote(project_dir: Path, settings: Settings) -> str:
    """Point the default remote at ``settings.remote_url`` in ``.dvc/config.local`` (never committed)."""
    url = settings.remote_url
    if "://" not in url:
        Path(url).mkdir(parents=True, exist_ok=True)
    lines = ["[core]", "    remote = llmops", "['remote \"llmops\"']", f"    url = {url}"]
    if url.startswith("s3://") and settings.s3_endpoint_url:
        lines.append(f"    endpointurl = {settings.s3_endpoint_url}")
    if url.startswith("s3://") and settings.s3_region:
        lines.append(f"    region = {settings.s3_region}")
    (project_dir / ".dvc" / "config.local").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return url


def repro_stage(project_dir: Path, stage: str, *, force: bool = False) -> StageRun:
    """Reproduce one stage; DVC skips it when its deps, params and outs are unchanged."""
    from dvc.exceptions import DvcException

    start = time.perf_counter()
    try:
        # DVC looks a stage name up in the working directory's dvc.yaml: run from the workspace.
        with _repo(project_dir) as repo, contextlib.chdir(repo.root_dir):
            ran = repo.reproduce(stage, single_item=True, force=force)
    except DvcException as exc:
        cause = str(exc.__cause__ or exc).rstrip(".")
        raise StageError(stage, f"{cause}. See the stage output above; rerun with `dvc repro {stage}`") from exc
    return StageRun(stage=stage, ran=bool(ran), seconds=round(time.perf_counter() - start, 2))


def push(project_dir: Path) -> int:
    """Push every stage output in the DVC cache to the default remote, with the run cache (so ``dvc repro
    --pull`` elsewhere restores unchanged stages); returns the number of files sent. Outputs marked
    ``push: false`` (personal data before the redaction boundary) stay local; the run cache holds hashes only."""
    with _repo(project_dir) as repo:
        return int(repo.push(run_cache=True))


def pull(project_dir: Path) -> int:
    """Bring the outputs of the workspace's dvc.lock into it: from the (shared) cache, else from the
    remote; an output in neither (``push: false`` data on a fresh worker) is left for its stage to
    rebuild. Returns the number of files fetched from the remote."""
    from dvc.exceptions import DvcException

    if not (project_dir / "dvc.lock").exists():
        return 0
    try:
        with _repo(project_dir) as repo:
            result = repo.pull(allow_missing=True)
    except DvcException as exc:
        raise StageError("pull", f"{exc}. Check the DVC remote (LLMOPS_DVC_REMOTE_URL) and `dvc pull`") from exc
    return int((result or {}).get("stats", {}).get("fetched", 0))


def read_lock(project_dir: Path) -> dict[str, Any]:
    lock = project_dir / "dvc.lock"
    if not lock.exists():
        return {}
    return yaml.safe_load(lock.read_text(encoding="utf-8")) or {}


def data_revision(project_dir: Path) -> str:
    """A content address of all stage outputs (from dvc.lock): equal data -> equal revision."""
    stages = read_lock(project_dir).get("stages", {})
    h = hashlib.sha256()
    for name in sorted(stages):
        for out in sorted(stages[name].get("outs", []), key=lambda o: o["path"]):
            h.update(f"{name}:{out['path']}:{out.get('md5', '')}\n".encode())
    return h.hexdigest()[:12] if stages else "none"
