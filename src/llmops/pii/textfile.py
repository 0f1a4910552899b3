"""Redact a JSONL file of conversations or ``{"text": ...}`` lines (``llmops pii redact``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llmops.errors import DataContractError
from llmops.jsonl import write_jsonl
from llmops.pii.redact import Redactor
from llmops.records import Conversation


def _read(path: Path) -> list[tuple[int, Any]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise DataContractError(f"{path} does not exist: pass the JSONL file to redact with --in") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataContractError(f"{path} is not UTF-8 text (byte {exc.start}): pass a JSONL file") from exc
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((n, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise DataContractError(f"{path}:{n} is not JSON ({exc.msg}); nothing was written") from exc
    return rows


def redact_file(in_path: Path, out_path: Path, redactor: Redactor) -> dict[str, Any]:
    """Validate every line first (nothing is written if one is bad), then redact and write atomically."""
    convs: list[tuple[int, Conversation]] = []
    texts: list[tuple[int, dict[str, Any]]] = []
    for n, obj in _read(Path(in_path)):
        if isinstance(obj, dict) and "turns" in obj:
            try:
                convs.append((n, Conversation.model_validate(obj)))
            except ValidationError as exc:
                raise DataContractError(
                    f"{in_path}:{n} is not a valid conversation: {exc.errors()[0]['msg']}; nothing was written"
                ) from exc
        elif isinstance(obj, dict) and isinstance(obj.get("text"), str):
            texts.append((n, obj))
        else:
            raise DataContractError(
                f'{in_path}:{n} is neither a conversation (with "turns") nor a {{"text": ...}} object; nothing was written'
            )
    out: dict[int, Any] = {}
    for (n, _), conv in zip(convs, redactor.redact_conversations([c for _, c in convs]), strict=True):
        out[n] = conv
    for (n, obj), red in zip(texts, redactor.redact_texts([o["text"] for _, o in texts]), strict=True):
        out[n] = {**obj, "text": red}
    write_jsonl(out_path, (out[n] for n in sorted(out)))
    return {"conversations": len(convs), "texts": len(texts), **redactor.stats.as_dict()}
