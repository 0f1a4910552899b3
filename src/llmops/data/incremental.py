"""Partitioned, content-addressed stage outputs: a nightly run costs what arrived, not the whole archive.

Layout: conversations live in one JSONL file per UTC day of ``created_at`` (``<dir>/2026-12-05.jsonl``):
new arrivals land in new partitions, so DVC (directory outs, files deduplicated by content) stores only the
partitions that changed. Each per-record stage keeps two kinds of reuse:

* **partition reuse** -- ``<out dir>/_manifest.json`` records, per output partition, the md5 of the input
  partition it was made from and the stage fingerprint (params + code). An unchanged input partition keeps
  its output file untouched (nothing is read but the input's bytes, for the hash). The manifest travels
  with the output (same DVC out, ``persist: true``), so a ``dvc checkout`` of another version stays
  consistent; it holds hashes and counts only.
* **record reuse** -- inside a changed partition, :class:`RecordCache` (SQLite under
  ``$LLMOPS_HOME/incremental``) maps ``hash(fingerprint, input line)`` to the stage's result for that
  record, so only new or changed records are processed. Entries of records that are gone are swept at
  the end of the run (erasure: nothing of a deleted conversation stays in the cache). The caches of the
  stages before the redaction boundary hold personal data: local only, never pushed, removed by
  ``llmops pii purge``.

Deletes propagate because every stage rebuilds each changed partition from its input: a conversation
removed at the source is missing from its raw partition, hence from the clean and redacted ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from llmops.errors import DataContractError
from llmops.jsonl import iter_jsonl

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

MANIFEST = "_manifest.json"
SUFFIX = ".jsonl"
CACHE_DIR = "incremental"  # under $LLMOPS_HOME: one SQLite file per stage


def partition_of(created_at: datetime) -> str:
    """The partition (file stem) of a conversation: its UTC creation day."""
    ts = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%d")


def partitions(directory: str | Path) -> list[Path]:
    """The partition files of a directory, in name (= date) order."""
    directory = Path(directory)
    return sorted(p for p in directory.glob(f"*{SUFFIX}") if p.is_file()) if directory.is_dir() else []


def iter_records(path: str | Path, model: type[M]) -> Iterator[M]:
    """Records of a partitioned directory (partition by partition) or of one JSONL file, streamed."""
    path = Path(path)
    if path.is_dir():
        for part in partitions(path):
            yield from iter_jsonl(part, model)
    else:
        yield from iter_jsonl(path, model)


def count_records(directory: str | Path) -> int:
    """Non-blank lines of every partition of ``directory`` (read, never parsed)."""
    n = 0
    for part in partitions(directory):
        with part.open("rb") as fh:
            n += sum(1 for line in fh if line.strip())
    return n


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of the non-blank lines of a file written by a stage, streamed."""
    with Path(path).open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if line.strip():
                yield line_no, line.rstrip("\n")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


# Digests are written in letters (hex digits 0-9 as g-p): a manifest lies in a published output, and a run of
# digits in a hex digest could read as a phone or card number to the leak scan of that output.
_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def letters(hexdigest: str) -> str:
    return hexdigest.translate(_LETTERS)


def file_digest(path: str | Path) -> str:
    """The file's md5, in letters (see ``_LETTERS``)."""
    h = hashlib.md5(usedforsecurity=False)
    with Path(path).open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return letters(h.hexdigest())


def _code_files(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        out += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    return out


def fingerprint(params: Any, code: Sequence[str | Path] = (), extra: str = "") -> str:
    """What a stage's per-record result depends on besides the record: its params (a pydantic model or a
    JSON-able value), the source of the code that computes it, and ``extra`` (a key's hash ...)."""
    h = hashlib.sha256()
    value = params.model_dump(mode="json") if isinstance(params, BaseModel) else params
    h.update(json.dumps(value, sort_keys=True, default=str).encode())
    for path in _code_files(code):
        h.update(f"\x1e{path.as_posix()}\x1f".encode())
        h.update(path.read_bytes())
    h.update(extra.encode())
    return h.hexdigest()[:32]


def record_key(fp: str, line: str | bytes) -> str:
    data = line.encode("utf-8") if isinstance(line, str) else line
    return hashlib.blake2b(fp.encode() + b"\x1f" + data, digest_size=16).hexdigest()


def cache_path(home: Path, stage: str) -> Path:
    return home / CACHE_DIR / f"{stage}.sqlite"


class RecordCache:
    """Per-record results of one stage, by ``record_key``; tagged with the partition and the run that
    last used them, so what a run no longer used can be swept (see module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)  # may hold personal data (stages before the boundary)
        # Concurrent runs (isolated flow runs share LLMOPS_HOME) wait for each other's short write batches.
        self.db = sqlite3.connect(self.path, timeout=300)
        self.db.execute("PRAGMA secure_delete=ON")  # swept records are overwritten, not left in free pages
        self.db.execute("CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, part TEXT, run INTEGER, value TEXT)")
        self.db.execute("CREATE INDEX IF NOT EXISTS cache_part ON cache (part)")
        self.db.execute("CREATE TABLE IF NOT EXISTS file_digests (path TEXT PRIMARY KEY, stat TEXT, digest TEXT, run INTEGER)")
        self.db.execute("CREATE TEMP TABLE kept (part TEXT PRIMARY KEY)")  # partitions this run reused whole
        os.chmod(self.path, 0o600)
        runs = "SELECT run FROM cache UNION ALL SELECT run FROM file_digests"
        last = self.db.execute(f"SELECT MAX(run) FROM ({runs})").fetchone()[0]
        self.run = (last or 0) + 1
        self._digested = False

    def get_many(self, keys: Sequence[str], part: str) -> dict[str, str]:
        """Cached values of ``keys`` (hits are marked as used by this run, under ``part``)."""
        found: dict[str, str] = {}
        for chunk in batched(dict.fromkeys(keys), 500):
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(f"SELECT key, value FROM cache WHERE key IN ({marks})", chunk).fetchall())
            self.db.execute(f"UPDATE cache SET run = ?, part = ? WHERE key IN ({marks})", [self.run, part, *chunk])
        self.db.commit()  # one short write transaction per batch: never a lock held for a whole stage
        return found

    def peek(self, key: str) -> str | None:
        """The cached value of ``key``, not marked as used (:meth:`touch` marks what a run used, in one write)."""
        row = self.db.execute("SELECT value FROM cache WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def touch(self, keys: Sequence[str], part: str) -> None:
        """Mark ``keys`` as used by this run, under ``part``."""
        for chunk in batched(dict.fromkeys(keys), 500):
            marks = ",".join("?" * len(chunk))
            self.db.execute(f"UPDATE cache SET run = ?, part = ? WHERE key IN ({marks})", [self.run, part, *chunk])
        self.db.commit()

    def rename(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Move entries from ``old`` to ``new`` keys (``(old, new)`` pairs; an entry already at ``new`` is
        replaced): a value stored under a provisional key becomes visible once a run's outputs are written."""
        self.db.executemany("UPDATE OR REPLACE cache SET key = ? WHERE key = ?", ((new, old) for old, new in pairs))
        self.db.commit()

    def put_many(self, items: Iterable[tuple[str, str]], part: str) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO cache (key, part, run, value) VALUES (?, ?, ?, ?)", ((k, part, self.run, v) for k, v in items)
        )
        self.db.commit()

    def digest(self, path: str | Path) -> str:
        """:func:`file_digest` of ``path``, read again only when the file's size, mtime or inode changed since
        this cache last hashed it (what DVC's state database does, by inode, mtime and size): a night reads
        the partitions that changed, not every partition of the archive."""
        st = os.stat(path)
        stat = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
        row = self.db.execute("SELECT stat, digest FROM file_digests WHERE path = ?", (str(path),)).fetchone()
        digest = str(row[1]) if row is not None and row[0] == stat else file_digest(path)
        row = (str(path), stat, digest, self.run)
        self.db.execute("INSERT OR REPLACE INTO file_digests (path, stat, digest, run) VALUES (?, ?, ?, ?)", row)
        self._digested = True
        return digest

    def keep(self, parts: Iterable[str]) -> None:
        """Mark every entry of ``parts`` (partitions reused whole) as used by this run. Recorded per partition
        (a table of this connection), not per entry: a night that reuses the archive rewrites none of it."""
        self.db.executemany("INSERT OR IGNORE INTO temp.kept (part) VALUES (?)", ((p,) for p in parts))
        self.db.commit()

    def sweep(self) -> int:
        """Delete entries this run did not use (deleted or changed records); returns how many."""
        n = self.db.execute("DELETE FROM cache WHERE run != ? AND part NOT IN (SELECT part FROM temp.kept)", (self.run,)).rowcount
        self.db.commit()
        return n

    def close(self) -> None:
        if self._digested:  # files this run did not hash (another workspace's, a removed partition) are forgotten
            self.db.execute("DELETE FROM file_digests WHERE run != ?", (self.run,))
        self.db.commit()
        self.db.close()

    def __enter__(self) -> RecordCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AtomicLines:
    """A JSONL file written line by line to a temp file, moved into place on :meth:`commit`."""

    def __init__(self, path: str | Path, mode: int = 0o644) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        self.fh = os.fdopen(fd, "w", encoding="utf-8")
        self.mode = mode
        self.lines = 0

    def write(self, line: str) -> None:
        self.fh.write(line)
        self.fh.write("\n")
        self.lines += 1

    def commit(self) -> None:
        self.fh.close()
        os.chmod(self.tmp, self.mode)
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.fh.close()
        Path(self.tmp).unlink(missing_ok=True)


@dataclass
class Counts:
    """``metrics/<stage>.json`` -> ``conversations``: records processed, reused from the previous run,
    deleted (gone from the input since, or replaced by a changed version), partitions written/reused."""

    processed: int = 0
    reused: int = 0
    deleted: int = 0
    partitions: int = 0
    partitions_written: int = 0
    partitions_reused: int = 0
    partitions_removed: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class PartitionedOutput:
    """The output directory of a partitioned stage and its manifest (see module docstring).

    ``companions``: other directories whose ``<partition>.jsonl`` belongs to the same partition entry (the
    redact stage's quarantine); they are checked and cleaned up with the main file. ``digest``: how a file is
    hashed (the stage's :meth:`RecordCache.digest`, so unchanged partitions are not read again).
    """

    directory: Path
    fp: str
    companions: Sequence[Path] = ()
    digest: Callable[[str | Path], str] = file_digest
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    previous: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        manifest = self.directory / MANIFEST
        if manifest.exists():
            try:
                data = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                data = {}
            if data.get("fingerprint") == self.fp:
                self.previous = data.get("partitions", {})

    def path(self, name: str) -> Path:
        return self.directory / f"{name}{SUFFIX}"

    def reusable(self, name: str, input_md5: str) -> dict[str, Any] | None:
        """The previous entry of partition ``name`` when it was made from the same input by the same
        fingerprint and its files are still the ones it wrote; else None (recompute it)."""
        entry = self.previous.get(name)
        if not entry or entry.get("input") != input_md5:
            return None
        files = {"output": self.path(name), **{f"{c.name}": c / f"{name}{SUFFIX}" for c in self.companions}}
        for key, path in files.items():
            want = entry.get("files", {}).get(key)
            if want is None:
                if path.exists():
                    return None
                continue
            if not path.exists() or self.digest(path) != want:
                return None
        self.entries[name] = entry
        return entry

    def record(self, name: str, input_md5: str, **extra: Any) -> None:
        """Register a partition just written (its files hashed as they are now)."""
        files = {"output": self.path(name), **{f"{c.name}": c / f"{name}{SUFFIX}" for c in self.companions}}
        hashes = {k: self.digest(p) for k, p in files.items() if p.exists()}
        self.entries[name] = {"input": input_md5, "files": hashes, **extra}

    def finish(self) -> int:
        """Remove partitions that are no longer produced (their input is gone) and write the manifest;
        returns how many partitions were removed."""
        removed = 0
        for directory in [self.directory, *self.companions]:
            for path in partitions(directory):
                if path.stem not in self.entries:
                    path.unlink()
                    removed += directory == self.directory
        self.directory.mkdir(parents=True, exist_ok=True)
        body = {"fingerprint": self.fp, "partitions": dict(sorted(self.entries.items()))}
        (self.directory / MANIFEST).write_text(json.dumps(body, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return removed

    def total(self, key: str) -> int:
        return sum(int(e.get(key, 0)) for e in self.entries.values())


class CachedRetriever:
    """A retriever whose results are reused across runs: ``search`` looks each query up in ``cache`` (keyed
    by ``fp``: the index's content and the retrieval params) and searches only the new ones. The training-set
    stage retrieves the serving context of every candidate question; after an append only the new
    questions cost an embedding and a search. ``searched``/``reused`` count queries."""

    def __init__(self, retriever: Any, cache: RecordCache, fp: str) -> None:
        self.retriever, self.cache, self.fp = retriever, cache, fp
        self.searched = 0
        self.reused = 0

    def search(self, queries: Sequence[str], k: int = 10) -> list[list[dict[str, Any]]]:
        keys = [record_key(self.fp, f"{k}\x1e{q}") for q in queries]
        known = self.cache.get_many(keys, "retrieval")
        missing = list(dict.fromkeys(q for q, key in zip(queries, keys, strict=True) if key not in known))
        if missing:
            hits = self.retriever.search(missing, k=k)
            fresh = {record_key(self.fp, f"{k}\x1e{q}"): json.dumps(h) for q, h in zip(missing, hits, strict=True)}
            self.cache.put_many(fresh.items(), "retrieval")
            known.update(fresh)
        self.searched += len(missing)
        self.reused += len(queries) - len(missing)
        return [json.loads(known[key]) for key in keys]


class SeenRecords:
    """Streams the conversations of a partitioned directory and counts which ones this stage had built from
    before with the same fingerprint (``reused``) and which are new or changed (``processed``). The new keys
    are stored by :meth:`commit`, after the stage's outputs are written (a failed run counts them again).
    Keys are filed per partition (``conversations/<day>``), so a partition the stage reuses whole
    (:meth:`reuse`) is neither read nor looked up."""

    def __init__(self, cache: RecordCache, fp: str) -> None:
        self.cache, self.fp = cache, fp
        self.processed = 0
        self.reused = 0
        self._new: list[tuple[str, str]] = []  # (key, tag) of the new records only: memory follows what arrived
        self._kept: list[str] = []  # tags of the partitions reused whole

    @staticmethod
    def tag(part: Path) -> str:
        return f"conversations/{part.stem}"

    def iter(self, directory: Path, model: type[Any]) -> Iterator[Any]:
        for part in partitions(directory):
            yield from self.iter_partition(part, model)

    def iter_partition(self, part: Path, model: type[Any]) -> Iterator[Any]:
        """The records of one partition file, counted."""
        tag = self.tag(part)
        for batch in batched(iter_lines(part), 1000):
            keys = [record_key(self.fp, line) for _, line in batch]
            known = self.cache.get_many(keys, tag)
            fresh = [k for k in keys if k not in known]
            self.processed += len(fresh)
            self.reused += len(keys) - len(fresh)
            self._new += ((k, tag) for k in fresh)
            for line_no, line in batch:
                try:
                    yield model.model_validate_json(line)
                except ValidationError as exc:
                    raise DataContractError(
                        f"{part}:{line_no} is not a valid {model.__name__}: {exc.errors()[0]['msg']}. "
                        "This file is a stage output: rerun the stage that writes it (dvc repro)."
                    ) from exc

    def reuse(self, part: Path, records: int) -> None:
        """Count a partition whose ``records`` were all built from by an earlier run that :meth:`commit`-ed them
        (unchanged since): its keys stay in the cache (:meth:`RecordCache.keep`, on :meth:`gone`, :meth:`commit`
        or :meth:`keep_reused`) without being read."""
        self.reused += records
        self._kept.append(self.tag(part))

    def keep_reused(self) -> None:
        """Mark the keys of the partitions reused whole as used (before :meth:`RecordCache.sweep`)."""
        if self._kept:
            self.cache.keep(self._kept)
            self._kept = []

    def gone(self) -> int:
        """Records seen by an earlier run and not by this one (deleted at the source, or changed)."""
        self.keep_reused()
        row = self.cache.db.execute(
            "SELECT COUNT(*) FROM cache WHERE (part = 'conversations' OR part LIKE 'conversations/%') AND run != ?"
            " AND part NOT IN (SELECT part FROM temp.kept)",
            (self.cache.run,),
        )
        return int(row.fetchone()[0])

    def commit(self) -> None:
        self.keep_reused()
        by_tag: dict[str, list[str]] = {}
        for key, tag in self._new:
            by_tag.setdefault(tag, []).append(key)
        for tag, keys in by_tag.items():
            self.cache.put_many(((k, "1") for k in keys), tag)


def tokenizer_digest(model_dir: Path) -> str:
    """The tokenizer files of the base model (a changed tokenizer recounts every example)."""
    files = sorted(model_dir.glob("tokenizer*")) + sorted(model_dir.glob("special_tokens_map.json"))
    return "".join(file_digest(f) for f in files)


class Lazy:
    """A resource built on first use (``get()``, or ``search`` for a retriever)."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory, self.value = factory, None

    def get(self) -> Any:
        if self.value is None:
            self.value = self.factory()
        return self.value

    def search(self, queries: Sequence[str], k: int) -> list[list[dict[str, Any]]]:
        return self.get().search(queries, k=k)
