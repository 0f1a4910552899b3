"""Read raw JSONL from a local path or ``s3://`` URI, validate each line against its contract,
and quarantine what fails with a reason. Nothing is dropped silently: ``in = out + quarantined``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

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


def parse_jsonl(data: bytes, model: type[M], source: str) -> IngestResult[M]:
    """Validate every non-blank line of ``data`` as ``model``; bad lines go to quarantine, whole, with a reason."""
    result: IngestResult[M] = IngestResult(source=source)
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            result.quarantined.append(hold(source, line_no, f"not UTF-8: invalid byte at offset {exc.start}", raw))
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            result.quarantined.append(hold(source, line_no, f"malformed JSON: {exc.msg} at column {exc.colno}", text))
            continue
        if not isinstance(obj, dict):
            reason = f"contract violation: expected a JSON object, got {type(obj).__name__}"
            result.quarantined.append(hold(source, line_no, reason, text))
            continue
        try:
            result.records.append(model.model_validate(obj))
        except ValidationError as exc:
            result.quarantined.append(hold(source, line_no, _validation_reason(exc), text))
    return result


def ingest(uri: str, model: type[M], store: ObjectStore) -> IngestResult[M]:
    """Read ``uri`` from ``store`` and validate it line by line (see :func:`parse_jsonl`).

    A URI ending in ``/`` is a prefix: every ``*.jsonl`` object below it is read, in name order.
    """
    uris = [u for u in store.list(uri) if u.endswith(".jsonl")] if uri.endswith("/") else [uri]
    total: IngestResult[M] = IngestResult(source=uri)
    for part in uris:
        result = parse_jsonl(store.read_bytes(part), model, source=part)
        total.records.extend(result.records)
        total.quarantined.extend(result.quarantined)
    return total
