"""Leak scan: residual personal data in any output (training JSONL, Chroma documents, feedback store,
reports, logs). The pipeline calls :func:`assert_clean` before it publishes the training set and the
index; ``llmops pii scan PATH`` runs the same check on any file or directory.

Findings never carry the value itself (only its type, where it is and a masked hint), so the error
message cannot become the leak.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from llmops.config import RedactParams
from llmops.errors import PIILeakError
from llmops.pii.spans import resolve_overlaps

if TYPE_CHECKING:
    from llmops.pii.redact import Redactor

_MAX_FILE = 64 * 1024 * 1024  # bigger files are scanned line by line all the same; this bounds one JSON blob


def scan_in_batches(
    items: Iterable[tuple[str, str]], scan_chunk: Callable[[list[tuple[str, str]]], list[Any]], batch: int = 512
) -> list[Any]:
    """The findings of ``scan_chunk`` over ``items`` ((location, text) pairs), ``batch`` pairs at a time (the
    detector's batch size; the items may be a stream)."""
    findings: list[Any] = []
    chunk: list[tuple[str, str]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= batch:
            findings += scan_chunk(chunk)
            chunk = []
    return findings + scan_chunk(chunk)


@dataclass(frozen=True)
class Finding:
    location: str  # file:line:json.path, collection/id, ...
    entity_type: str
    hint: str  # first and last character of the value, the rest masked

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _hint(value: str) -> str:
    return value[0] + "*" * max(0, len(value) - 2) + value[-1] if len(value) > 2 else "**"


class Scanner:
    """The redactor's detector restricted to ``cfg.scan_entities``: the same analyzer path and the same
    ``score_threshold`` as redaction, so text the redactor produced is judged by the rules that produced it.

    ``redactor``: share a loaded redactor (its spaCy model, its worker pool); by default one is built
    from ``cfg`` (without vault: scanning stores nothing).
    """

    def __init__(self, cfg: RedactParams, redactor: Redactor | None = None) -> None:
        self.cfg = cfg
        if redactor is None:
            from llmops.pii.redact import Redactor

            redactor = Redactor(cfg.model_copy(update={"vault": False, "workers": 1}))
        self.redactor = redactor

    def scan(self, items: Iterable[tuple[str, str]], batch: int = 512) -> list[Finding]:
        """``items``: (location, text) pairs."""
        return scan_in_batches(items, self._scan, batch)

    def spans(self, texts: list[str]) -> list[list[tuple[str, int, int]]]:
        """``(entity type, start, end)`` of every residual finding in each text (overlaps resolved)."""
        if not texts:
            return []
        analyzer = self.redactor.analyzer
        if hasattr(analyzer, "scan") and analyzer.cfg.scan_entities == self.cfg.scan_entities:
            found = analyzer.scan(texts)  # the detector's leak-gate entry point (its worker pool, same shadow)
        else:  # Presidio's engine, or other entities: the redactor's own analysis, filtered the same way
            found = self.redactor.analyze(texts, self.cfg.scan_entities)
        return [[(s.entity_type, s.start, s.end) for s in resolve_overlaps(f)] for f in found]

    def _scan(self, chunk: list[tuple[str, str]]) -> list[Finding]:
        return findings_of(chunk, self.spans([t for _, t in chunk]))


def findings_of(chunk: Sequence[tuple[str, str]], spans: Sequence[Sequence[tuple[str, int, int]]]) -> list[Finding]:
    """Findings of ``(location, text)`` items from their spans (:meth:`Scanner.spans`)."""
    return [
        Finding(loc, entity, _hint(text[start:end]))
        for (loc, text), found in zip(chunk, spans, strict=True)
        for entity, start, end in found
    ]


def _strings(obj: Any, path: str = "$") -> Iterator[tuple[str, str]]:
    """Every string in a JSON value with its path (``$.messages[1].content``)."""
    if isinstance(obj, str):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _strings(v, f"{path}[{i}]")


def record_texts(records: Iterable[BaseModel | dict[str, Any]], source: str) -> Iterator[tuple[str, str]]:
    """(location, text) for every string field of typed records or dicts."""
    for i, rec in enumerate(records):
        data = rec.model_dump(mode="json") if isinstance(rec, BaseModel) else rec
        for path, text in _strings(data):
            yield f"{source}#{i}:{path}", text


def file_texts(path: Path) -> Iterator[tuple[str, str]]:
    """(location, text) for a file: JSON lines by field, other text by line; binary files are skipped."""
    with path.open("rb") as fh:
        head = fh.read(8192)
    if b"\x00" in head:
        return
    text_lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    if path.suffix in {".json"} and path.stat().st_size < _MAX_FILE:
        try:
            yield from ((f"{path}:{p}", t) for p, t in _strings(json.loads("\n".join(text_lines))))
            return
        except json.JSONDecodeError:
            pass
    for n, line in enumerate(text_lines, start=1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                yield from ((f"{path}:{n}:{p}", t) for p, t in _strings(json.loads(line)))
                continue
            except json.JSONDecodeError:
                pass  # a broken line is still scanned as text
        yield f"{path}:{n}", line


def path_texts(path: str | Path) -> Iterator[tuple[str, str]]:
    """A file, or every file under a directory (hidden ones and .dvc caches included: they are outputs too)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        yield from file_texts(f)


def chroma_texts(collection: Any, page: int = 1000) -> Iterator[tuple[str, str]]:
    """(location, text) for every document and string metadata value in a Chroma collection."""
    offset = 0
    while True:
        got = collection.get(include=["documents", "metadatas"], limit=page, offset=offset)
        if not got["ids"]:
            return
        for i, doc_id in enumerate(got["ids"]):
            yield f"{collection.name}/{doc_id}:document", got["documents"][i] or ""
            for key, value in (got["metadatas"][i] or {}).items():
                if isinstance(value, str):
                    yield f"{collection.name}/{doc_id}:metadata.{key}", value
        offset += len(got["ids"])


def assert_clean(findings: list[Finding], what: str, show: int = 10) -> None:
    """Raise :class:`PIILeakError` listing the findings (masked) if there are any."""
    if not findings:
        return
    lines = "\n".join(f"  {f.location}: {f.entity_type} {f.hint}" for f in findings[:show])
    more = f"\n  ... and {len(findings) - show} more" if len(findings) > show else ""
    raise PIILeakError(
        f"{len(findings)} piece(s) of personal data found in {what}; nothing was published.\n{lines}{more}\n"
        "Fix the source or the redact stage (params.yaml redact.entities / score_threshold) and rerun it."
    )


def scan_records(records: Iterable[BaseModel | dict[str, Any]], cfg: RedactParams, what: str) -> None:
    """Leak gate for records about to be published (training examples, index documents)."""
    assert_clean(Scanner(cfg).scan(record_texts(records, what)), what)


def scan_path(path: str | Path, cfg: RedactParams) -> list[Finding]:
    return Scanner(cfg).scan(path_texts(path))
