"""JSONL helpers for files the pipeline itself wrote (trusted). Untrusted input goes through
:func:`llmops.data.ingest.parse_jsonl`, which quarantines instead of raising."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from llmops.errors import DataContractError

M = TypeVar("M", bound=BaseModel)


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON object file, ``{}`` when the file does not exist (invalid JSON raises ``ValueError``)."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def iter_jsonl(path: str | Path, model: type[M]) -> Iterator[M]:
    """Yield ``model`` records from a JSONL file written by an earlier stage."""
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield model.model_validate_json(line)
            except ValidationError as exc:
                raise DataContractError(
                    f"{path}:{line_no} is not a valid {model.__name__}: {exc.errors()[0]['msg']}. "
                    "This file is a stage output: rerun the stage that writes it (dvc repro)."
                ) from exc


def read_jsonl(path: str | Path, model: type[M]) -> list[M]:
    return list(iter_jsonl(path, model))


def dumps(record: BaseModel | dict[str, Any]) -> str:
    if isinstance(record, BaseModel):
        return record.model_dump_json(exclude_none=True)
    return json.dumps(record, ensure_ascii=False, sort_keys=False)


def write_jsonl(path: str | Path, records: Iterable[BaseModel | dict[str, Any]]) -> int:
    """Write records atomically (temp file + rename); returns the number of lines."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    n = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for record in records:
                fh.write(dumps(record))
                fh.write("\n")
                n += 1
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def write_json(path: str | Path, obj: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
