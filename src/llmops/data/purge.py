"""Delete the personal data kept before the redaction boundary: the workspace's raw, clean and quarantine
outputs (the feedback and training-set quarantines included) and their objects in the local DVC cache (the
remote never had them: those outs are ``push: false``).

Objects an output after the boundary shares (a knowledge-base file the redactor left unchanged is one
object for ``data/clean`` and ``data/redacted``) are kept, so no published version loses its data. Older
versions are found through the ``dvc.lock`` copies that run summaries keep (``<home>/runs/*.dvc.lock``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmops import workspace as ws

PRIVATE = [ws.RAW, ws.CLEAN, ws.QUARANTINE, ws.REDACT_QUARANTINE, ws.FEEDBACK_QUARANTINE, ws.TRAINSET_QUARANTINE]


@dataclass
class PurgeReport:
    paths: list[str] = field(default_factory=list)  # workspace outputs removed
    objects: int = 0  # cache objects removed
    bytes: int = 0
    shared: int = 0  # objects kept because a post-boundary output uses them too

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _outs(lock: dict[str, Any]) -> Iterable[tuple[str, str]]:
    for stage in (lock.get("stages") or {}).values():
        for out in stage.get("outs", []):
            if out.get("md5"):
                yield out["path"], out["md5"]


def _read_lock(path: Path) -> dict[str, Any]:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _expand(md5: str, cache: Any) -> set[str]:
    """An output's object and, for a directory, the objects of its files."""
    oids = {md5}
    if md5.endswith(".dir"):
        listing = Path(cache.oid_to_path(md5))
        if listing.exists():
            oids |= {entry["md5"] for entry in json.loads(listing.read_text(encoding="utf-8"))}
    return oids


def protect_private(project_dir: Path) -> int:
    """Owner-only permissions on the outputs before the boundary and on their local DVC cache objects: DVC
    writes what it commits with the process umask (0644 files, 0444 objects), readable by every local user.
    Directories become 0700, files 0600, cache objects 0400 (objects a post-boundary output shares keep
    theirs; a workspace file hardlinked to its object gets the object's mode). Returns the number of paths changed."""
    from dvc.repo import Repo

    changed = 0

    def chmod(path: Path, mode: int) -> None:
        nonlocal changed
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
            changed += 1

    for rel in PRIVATE:
        root = project_dir / rel
        if not root.exists():
            continue
        for path in [root, *root.rglob("*")]:
            if path.is_symlink():
                continue
            if path.is_dir():
                chmod(path, 0o700)
            elif path.stat().st_nlink == 1:  # a hardlink is a cache object's inode: the object loop decides its mode
                chmod(path, 0o600)
    private_paths = {str(p) for p in PRIVATE}
    with Repo(str(project_dir)) as repo:
        cache = repo.cache.local
        private: set[str] = set()
        public: set[str] = set()
        for out_path, md5 in _outs(_read_lock(project_dir / "dvc.lock")):
            (private if out_path in private_paths else public).update(_expand(md5, cache))
        for oid in private - public:
            obj = Path(cache.oid_to_path(oid))
            if obj.exists() and not obj.is_symlink():
                chmod(obj, 0o400)
    return changed


PRIVATE_CACHES = ["ingest", "clean"]  # per-record caches of the stages before the boundary (llmops.data.incremental)


def purge_private(
    project_dir: Path, locks: Iterable[Path] = (), *, dry_run: bool = False, state_dir: Path | None = None
) -> PurgeReport:
    """Remove raw/clean/quarantine outputs of ``project_dir`` and their DVC cache objects.

    ``locks``: more ``dvc.lock`` files (archived by run summaries) whose private outputs are purged too.
    ``state_dir``: the state directory ($LLMOPS_HOME) whose pre-boundary record caches go too.
    ``dry_run``: report what would go, remove nothing.
    """
    from dvc.repo import Repo

    private_paths = {str(p) for p in PRIVATE}
    with Repo(str(project_dir)) as repo:
        cache = repo.cache.local
        private: set[str] = set()
        public: set[str] = set()
        for lock_path in [project_dir / "dvc.lock", *locks]:
            for out_path, md5 in _outs(_read_lock(lock_path)):
                (private if out_path in private_paths else public).update(_expand(md5, cache))
        report = PurgeReport(shared=len(private & public))
        for oid in sorted(private - public):
            obj = Path(cache.oid_to_path(oid))
            if obj.exists():
                report.objects += 1
                report.bytes += obj.stat().st_size
                if not dry_run:
                    obj.unlink()
    for rel in PRIVATE:
        path = project_dir / rel
        if path.exists():
            report.paths.append(str(rel))
            if not dry_run:
                shutil.rmtree(path)
    if state_dir is not None:
        from llmops.data.incremental import cache_path

        for stage in PRIVATE_CACHES:
            db = cache_path(state_dir, stage)
            if db.exists():
                report.paths.append(str(db))
                if not dry_run:
                    for f in db.parent.glob(f"{db.name}*"):  # the database and its journal files
                        f.unlink()
    return report
