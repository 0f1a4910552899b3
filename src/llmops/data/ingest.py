"""Read raw JSONL from a local path or ``s3://`` URI, validate each line against its contract,
and quarantine what fails with a reason. Nothing is dropped silently: ``in = out + quarantined``."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from llmops.data.incremental import (
    SUFFIX,
    Counts,
    RecordCache,
    batched,
    file_digest,
    letters,
    partition_of,
    partitions,
    record_key,
)
from llmops.data.quarantine import hold
from llmops.records import Quarantined
from llmops.storage import ObjectStore

M = TypeVar("M", bound=BaseModel)


@dataclass
class IngestResult(Generic[M]):
    source: str
    records: list[M] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)

    @property
    def lines_in(self) -> int:
        return len(self.records) + len(self.quarantined)

    def counts(self) -> dict[str, int]:
        return {"in": self.lines_in, "out": len(self.records), "quarantined": len(self.quarantined)}


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}|\d{1,6}")


def _validation_reason(exc: ValidationError) -> str:
    """Field paths and messages, never values: a key that is not a plain name (an e-mail used as a key)
    shows as ``<key>``, so the reason, which is printed and stays readable in a sealed quarantine, holds no data."""
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) if _KEY.fullmatch(str(p)) else "<key>" for p in err["loc"]) or "<record>"
        parts.append(f"{loc}: {err['msg']}")
    more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return "contract violation: " + "; ".join(parts) + more


def validate_line(raw: bytes, model: type[M], source: str, line_no: int) -> M | Quarantined:
    """One source line as ``model``, or its quarantine record (whole, with the reason)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return hold(source, line_no, f"not UTF-8: invalid byte at offset {exc.start}", raw)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return hold(source, line_no, f"malformed JSON: {exc.msg} at column {exc.colno}", text)
    if not isinstance(obj, dict):
        return hold(source, line_no, f"contract violation: expected a JSON object, got {type(obj).__name__}", text)
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        return hold(source, line_no, _validation_reason(exc), text)


def parse_jsonl(data: bytes, model: type[M], source: str) -> IngestResult[M]:
    """Validate every non-blank line of ``data`` as ``model``; bad lines go to quarantine, whole, with a reason."""
    result: IngestResult[M] = IngestResult(source=source)
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        out = validate_line(raw, model, source, line_no)
        (result.quarantined if isinstance(out, Quarantined) else result.records).append(out)  # type: ignore[arg-type]
    return result


def source_uris(uri: str, store: ObjectStore) -> list[str]:
    """A URI ending in ``/`` is a prefix: every ``*.jsonl`` object below it, in name order."""
    return [u for u in store.list(uri) if u.endswith(".jsonl")] if uri.endswith("/") else [uri]


def iter_source_lines(uri: str, store: ObjectStore) -> Iterator[tuple[str, int, bytes]]:
    """``(source, line number, raw line)`` of every non-blank line; local files are streamed, objects are
    read one at a time (bounded by the largest object: land daily drops as separate objects)."""
    from llmops.storage.local import LocalStore

    for part in source_uris(uri, store):
        if isinstance(store, LocalStore):
            with LocalStore._path(part).open("rb") as fh:
                lines: Iterable[bytes] = fh
                for line_no, raw in enumerate(lines, start=1):
                    raw = raw.rstrip(b"\r\n")
                    if raw.strip():
                        yield part, line_no, raw
        else:
            for line_no, raw in enumerate(store.read_bytes(part).split(b"\n"), start=1):
                raw = raw.rstrip(b"\r")
                if raw.strip():
                    yield part, line_no, raw


def ingest(uri: str, model: type[M], store: ObjectStore) -> IngestResult[M]:
    """Read ``uri`` from ``store`` and validate it line by line (see :func:`parse_jsonl`).

    A URI ending in ``/`` is a prefix: every ``*.jsonl`` object below it is read, in name order.
    """
    uris = source_uris(uri, store)
    total: IngestResult[M] = IngestResult(source=uri)
    for part in uris:
        result = parse_jsonl(store.read_bytes(part), model, source=part)
        total.records.extend(result.records)
        total.quarantined.extend(result.quarantined)
    return total


@dataclass
class PartitionedIngest:
    """What :func:`ingest_partitioned` did (``metrics/ingest.json`` -> ``conversations``)."""

    lines_in: int = 0
    out: int = 0
    quarantined: int = 0
    counts: Counts = field(default_factory=Counts)
    mode: str = "full"  # or "append": only the sources' new bytes were read (ingest_appended)

    def as_dict(self) -> dict[str, Any]:
        return {"in": self.lines_in, "out": self.out, "quarantined": self.quarantined, "mode": self.mode, **self.counts.as_dict()}


def ingest_partitioned(
    uri: str,
    store: ObjectStore,
    out_dir: Path,
    quarantine: Callable[[Quarantined], None],
    cache: RecordCache,
    fp: str,
    *,
    buffer_bytes: int = 8 << 20,
) -> PartitionedIngest:
    """Stream ``uri``'s conversations into ``out_dir/<created day>.jsonl`` (each valid line as it arrived).

    Lines seen by an earlier run (same bytes, same fingerprint) are not validated again: the cache knows
    their partition. Bad lines go to ``quarantine``. A partition file whose content is unchanged is left
    untouched; partitions no longer fed by the source are removed (deletes propagate). Memory: one
    ``buffer_bytes`` buffer of lines and one cache batch, whatever the archive's size.
    """
    from llmops.records import Conversation

    result = PartitionedIngest()
    staging = out_dir / ".staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    buffers: dict[str, list[bytes]] = {}
    buffered = 0

    def flush() -> None:
        nonlocal buffered
        for name, lines in buffers.items():
            with (staging / f"{name}{SUFFIX}").open("ab") as fh:
                fh.write(b"".join(lines))
        buffers.clear()
        buffered = 0

    for batch in batched(iter_source_lines(uri, store), 1000):
        keys = [record_key(fp, raw) for _, _, raw in batch]
        known = cache.get_many(keys, part="ingest")
        new: list[tuple[str, str]] = []
        for key, (source, line_no, raw) in zip(keys, batch, strict=True):
            result.lines_in += 1
            name = known.get(key)
            if name is None:
                rec = validate_line(raw, Conversation, source, line_no)
                if isinstance(rec, Quarantined):
                    result.quarantined += 1
                    quarantine(rec)
                    continue
                name = partition_of(rec.created_at)
                new.append((key, name))
                result.counts.processed += 1
            else:
                result.counts.reused += 1
            result.out += 1
            buffers.setdefault(name, []).append(raw + b"\n")
            buffered += len(raw) + 1
        cache.put_many(new, part="ingest")
        if buffered >= buffer_bytes:
            flush()
    flush()
    written = {p.stem for p in partitions(staging)}
    for part in partitions(staging):
        target = out_dir / part.name
        if target.exists() and file_digest(target) == file_digest(part):
            part.unlink()
            result.counts.partitions_reused += 1
        else:
            os.chmod(part, 0o644)
            os.replace(part, target)
            result.counts.partitions_written += 1
    for part in partitions(out_dir):
        if part.stem not in written:
            part.unlink()
            result.counts.partitions_removed += 1
    shutil.rmtree(staging)
    result.counts.partitions = len(written)
    result.counts.deleted = cache.sweep()
    _write_state(out_dir, fp, uri, store, result, cache)
    return result


STATE = "_manifest.json"


def _local_sources(uri: str, store: ObjectStore) -> list[tuple[str, Path]] | None:
    from llmops.storage.local import LocalStore

    if not isinstance(store, LocalStore):
        return None
    return [(u, LocalStore._path(u)) for u in source_uris(uri, store)]


def _source_state(path: Path, upto: int | None = None, *, count_lines: bool = True) -> tuple[Any, int, int, bool]:
    """(sha256 object, bytes, newlines, ends with a newline) of ``path``'s first ``upto`` bytes (all by
    default); newlines are counted only when ``count_lines``."""
    h, size, lines, last = hashlib.sha256(), 0, 0, b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(min(1 << 20, upto - size) if upto is not None else 1 << 20):
            h.update(chunk)
            size += len(chunk)
            if count_lines:
                lines += chunk.count(b"\n")
            last = chunk[-1:]
            if upto is not None and size >= upto:
                break
    return h, size, lines, last == b"\n"


def _write_state(
    out_dir: Path,
    fp: str,
    uri: str,
    store: ObjectStore,
    result: PartitionedIngest,
    cache: RecordCache,
    known: dict[str, dict[str, Any]] | None = None,
) -> None:
    """What the next run needs to recognise an append-only source (see :func:`ingest_appended`): per local
    source its sha256, size and line count (``known``: those the append path computed as it read), and the
    digest of every partition (through ``cache``: only the partitions written now are read)."""
    sources = _local_sources(uri, store)
    state: dict[str, Any] = {"fingerprint": fp, "uri": uri, "result": result.as_dict()}
    if sources is not None:
        state["sources"] = {}
        for u, path in sources:
            if known is not None and u in known:
                state["sources"][u] = known[u]
                continue
            h, size, lines, _ = _source_state(path)
            state["sources"][u] = {"sha256": letters(h.hexdigest()), "size": size, "lines": lines}
    state["partitions"] = {p.stem: cache.digest(p) for p in partitions(out_dir)}
    (out_dir / STATE).write_text(json.dumps(state, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def ingest_appended(
    uri: str,
    store: ObjectStore,
    out_dir: Path,
    quarantine: Callable[[Quarantined], None],
    cache: RecordCache,
    fp: str,
) -> PartitionedIngest | None:
    """The append-only fast path: when every source the last run read is unchanged up to the size it had
    then (sha256 of that prefix, ending at a line break), new objects aside, and the partitions are the ones
    it wrote, only the new bytes are read and validated and their lines appended to their day partitions.
    The prefix is read once, for its hash (which goes on over the new bytes, for the next run's check); the
    partitions are not read unless their size, mtime or inode changed (:meth:`RecordCache.digest`).
    Anything else (an edited or deleted line, another fingerprint, s3 sources) returns None: the caller
    takes the full path (:func:`ingest_partitioned`), which sees edits and deletes."""
    from llmops.records import Conversation

    sources = _local_sources(uri, store)
    try:
        state = json.loads((out_dir / STATE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if sources is None or state.get("fingerprint") != fp or state.get("uri") != uri or "sources" not in state:
        return None
    current = {u for u, _ in sources}
    if not set(state["sources"]) <= current:
        return None  # a source object is gone: deletes
    names = {p.stem for p in partitions(out_dir)}
    if names != set(state["partitions"]) or any(
        cache.digest(out_dir / f"{n}{SUFFIX}") != m for n, m in state["partitions"].items()
    ):
        return None
    starts: dict[str, tuple[Any, int, int]] = {}
    for u, path in sources:
        old = state["sources"].get(u)
        if old is None:
            starts[u] = (hashlib.sha256(), 0, 0)
            continue
        h, size, _, newline_end = _source_state(path, old["size"], count_lines=False)
        if size != old["size"] or letters(h.hexdigest()) != old.get("sha256") or (size and not newline_end):
            return None
        starts[u] = (h, size, old["lines"])
    prev = state["result"]
    result = PartitionedIngest(lines_in=prev["in"], out=prev["out"], quarantined=prev["quarantined"], mode="append")
    result.counts.reused = prev["out"]
    touched: dict[str, list[bytes]] = {}
    new: list[tuple[str, str]] = []
    read: dict[str, dict[str, Any]] = {}
    for u, path in sources:
        h, offset, newlines = starts[u]
        line_no = newlines
        with path.open("rb") as fh:
            fh.seek(offset)
            for raw in fh:
                h.update(raw)
                offset += len(raw)
                newlines += raw.endswith(b"\n")
                line_no += 1
                raw = raw.rstrip(b"\r\n")
                if not raw.strip():
                    continue
                result.lines_in += 1
                rec = validate_line(raw, Conversation, u, line_no)
                if isinstance(rec, Quarantined):
                    result.quarantined += 1
                    quarantine(rec)
                    continue
                name = partition_of(rec.created_at)
                touched.setdefault(name, []).append(raw + b"\n")
                new.append((record_key(fp, raw), name))
                result.out += 1
                result.counts.processed += 1
        read[u] = {"sha256": letters(h.hexdigest()), "size": offset, "lines": newlines}
    for name, appended in touched.items():
        with (out_dir / f"{name}{SUFFIX}").open("ab") as fh:
            fh.write(b"".join(appended))
    cache.put_many(new, part="ingest")
    result.counts.partitions = len(names | set(touched))
    result.counts.partitions_written = len(touched)
    result.counts.partitions_reused = result.counts.partitions - len(touched)
    _write_state(out_dir, fp, uri, store, result, cache, read)
    return result
