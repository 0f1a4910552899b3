"""The generation log: append-only JSONL partitions under ``<LLMOPS_HOME>/generation-log/``.

Layout::

    generation-log/generations/date=2026-11-22/part-<host>-<pid>-<id>.jsonl   one FeedbackEvent per line
    generation-log/feedback/date=2026-11-22/part-<host>-<pid>-<id>.jsonl      one FeedbackUpdate per line

Why it is safe under concurrent requests and restarts:
* every process writes its own part files, so two processes never interleave;
* within a process a lock serialises writers and each line goes out in ONE ``os.write`` on an
  ``O_APPEND`` descriptor before the request is answered, so an acknowledged event is in the file
  (the page cache survives a killed process) and a kill cannot leave half a line;
* ``fsync=True`` additionally survives power loss, at a latency cost.

Readers keep a per-file byte watermark and only consume complete lines, so ingestion is incremental.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llmops.data.ingest import parse_jsonl
from llmops.records import FeedbackEvent, Quarantined


class FeedbackUpdate(BaseModel):
    """A user's rating and/or correction of an earlier generation."""

    model_config = ConfigDict(extra="forbid")

    generation_id: str = Field(min_length=1)
    ts: datetime
    rating: Literal[-1, 0, 1] | None = None
    correction: str | None = None
    simulated: bool = False
    key_name: str | None = None  # the API key that gave it (its name, never the secret)
    role: Literal["user", "reviewer"] | None = None  # that key's role when it gave it; absent -> treated as "user"


class _Partition:
    def __init__(self, root: Path, kind: str, part_id: str) -> None:
        self.root, self.kind, self.part_id = root, kind, part_id
        self._date: str | None = None
        self._fd: int | None = None

    def write(self, line: bytes, fsync: bool) -> None:
        date = datetime.now(UTC).strftime("%Y-%m-%d")
        if date != self._date:  # roll over at midnight (UTC)
            self.close()
            path = self.root / self.kind / f"date={date}" / f"part-{self.part_id}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._date = date
        assert self._fd is not None
        written = os.write(self._fd, line)
        if written != len(line):  # regular files do not short-write outside disk-full; say so loudly
            raise OSError(f"short write to the generation log ({written}/{len(line)} bytes): disk full?")
        if fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class GenerationLog:
    """Appends generations and feedback for one process (thread-safe)."""

    def __init__(self, root: Path, *, fsync: bool = False) -> None:
        self.root = root
        self.fsync = fsync
        part_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._parts = {k: _Partition(root, k, part_id) for k in ("generations", "feedback")}
        self._lock = threading.Lock()

    def _append(self, kind: str, record: BaseModel) -> None:
        line = (record.model_dump_json(exclude_none=True) + "\n").encode("utf-8")
        with self._lock:
            self._parts[kind].write(line, self.fsync)

    def append_generation(self, event: FeedbackEvent) -> None:
        self._append("generations", event)

    def append_feedback(self, update: FeedbackUpdate) -> None:
        self._append("feedback", update)

    def close(self) -> None:
        with self._lock:
            for part in self._parts.values():
                part.close()


@dataclass
class NewLogData:
    generations: list[FeedbackEvent] = field(default_factory=list)
    updates: list[FeedbackUpdate] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    watermark: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {"generations": len(self.generations), "updates": len(self.updates), "quarantined": len(self.quarantined)}


def load_watermark(path: Path) -> dict[str, int]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def save_watermark(path: Path, watermark: dict[str, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(watermark, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _part_files(root: Path) -> list[Path]:
    return sorted(root.glob("*/date=*/part-*.jsonl"))


def has_new_data(root: Path, watermark: dict[str, int]) -> bool:
    """Are there bytes in the log beyond the watermark? (cheap: file sizes only)"""
    return any(p.stat().st_size > watermark.get(str(p.relative_to(root)), 0) for p in _part_files(root))


def collect_new(root: Path, watermark: dict[str, int]) -> NewLogData:
    """Complete lines written since ``watermark``; bad lines are quarantined. Returns the next watermark
    (save it only after the caller has stored what it read)."""
    out = NewLogData(watermark=dict(watermark))
    for path in _part_files(root):
        key = str(path.relative_to(root))
        start = watermark.get(key, 0)
        with path.open("rb") as fh:
            fh.seek(start)
            data = fh.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next run
        if not complete:
            continue
        kind = path.relative_to(root).parts[0]
        if kind == "generations":
            generations = parse_jsonl(complete, FeedbackEvent, source=key)
            out.generations.extend(generations.records)
            out.quarantined.extend(generations.quarantined)
        else:
            updates = parse_jsonl(complete, FeedbackUpdate, source=key)
            out.updates.extend(updates.records)
            out.quarantined.extend(updates.quarantined)
        out.watermark[key] = start + len(complete)
    return out
