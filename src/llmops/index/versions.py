"""Versioned collections behind a serving alias.

Chroma has no native alias, so the alias lives in Chroma itself: one record per alias in the small
collection ``llmops-aliases``, holding the serving version and the versions it served before. Keeping
it in Chroma (not a local file) makes it work the same against an embedded PersistentClient and a
Chroma server. A single ``upsert`` of that record is the atomic switch: until it happens, readers keep
resolving the old version, whatever state a half-written new version is in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from llmops.errors import IndexStateError

ALIAS_COLLECTION = "llmops-aliases"


@dataclass
class AliasRecord:
    alias: str
    serving: str | None = None
    history: list[str] = field(default_factory=list)  # earlier serving versions, oldest first
    switched_at: str | None = None


def _alias_collection(client: Any) -> Any:
    return client.get_or_create_collection(name=ALIAS_COLLECTION, embedding_function=None)


def read_alias(client: Any, alias: str) -> AliasRecord:
    """The alias record (an empty one when the alias was never switched)."""
    got = _alias_collection(client).get(ids=[alias], include=["metadatas"])
    if not got["ids"]:
        return AliasRecord(alias)
    meta = got["metadatas"][0]
    return AliasRecord(alias, meta.get("serving") or None, json.loads(meta.get("history", "[]")), meta.get("switched_at"))


def _write_alias(client: Any, record: AliasRecord) -> None:
    meta = {
        "serving": record.serving or "",
        "history": json.dumps(record.history),
        "switched_at": datetime.now(UTC).isoformat(),
    }
    # A one-dimensional placeholder vector: Chroma records need one, the alias is never searched.
    _alias_collection(client).upsert(ids=[record.alias], embeddings=[[0.0]], metadatas=[meta])


def switch_alias(client: Any, alias: str, version: str) -> AliasRecord:
    """Point ``alias`` at ``version`` (one atomic upsert); the previous version goes to the history."""
    record = read_alias(client, alias)
    if record.serving == version:
        return record
    if record.serving:
        record.history = [v for v in record.history if v != record.serving] + [record.serving]
    record.serving = version
    _write_alias(client, record)
    return read_alias(client, alias)


def rollback_alias(client: Any, alias: str) -> AliasRecord:
    """Serve the previous version again; the current one is dropped from the alias (and pruned later)."""
    record = read_alias(client, alias)
    existing = set(version_names(client, alias))
    previous = [v for v in record.history if v in existing]
    if not previous:
        raise IndexStateError(
            f"alias {alias!r} has no earlier version to roll back to (serving {record.serving!r}); "
            "raise index.retention to keep more versions"
        )
    record.serving, record.history = previous[-1], previous[:-1]
    _write_alias(client, record)
    return read_alias(client, alias)


_VERSION = re.compile(r"^(?P<alias>.+)-v(?P<n>\d+)$")


def version_names(client: Any, alias: str) -> list[str]:
    """Every collection that is a version of ``alias``, oldest first."""
    names = [getattr(c, "name", c) for c in client.list_collections()]
    found = [(int(m["n"]), n) for n in names if (m := _VERSION.match(n)) and m["alias"] == alias]
    return [n for _, n in sorted(found)]


def next_version(client: Any, alias: str) -> str:
    """A fresh version name, never reused (also past versions left behind by a crash)."""
    numbers = [int(_VERSION.match(n)["n"]) for n in version_names(client, alias)]  # type: ignore[index]
    record = read_alias(client, alias)
    numbers += [int(m["n"]) for v in [record.serving, *record.history] if v and (m := _VERSION.match(v))]
    return f"{alias}-v{max(numbers, default=0) + 1}"


def prune_versions(client: Any, alias: str, retention: int) -> list[str]:
    """Delete versions beyond the serving one plus ``retention - 1`` previous ones, and unfinished writes."""
    record = read_alias(client, alias)
    kept_history = record.history[-(retention - 1) :] if retention > 1 else []
    keep = set(kept_history) | ({record.serving} if record.serving else set())
    deleted = [v for v in version_names(client, alias) if v not in keep]
    for name in deleted:
        client.delete_collection(name)
    if kept_history != record.history:
        record.history = kept_history
        _write_alias(client, record)
    return deleted


def serving_collection(client: Any, alias: str) -> Any | None:
    """The collection the alias serves, or None when nothing was ever published."""
    record = read_alias(client, alias)
    if not record.serving:
        return None
    try:
        return client.get_collection(record.serving, embedding_function=None)
    except Exception as exc:  # chromadb raises NotFoundError/ValueError depending on client and version
        raise IndexStateError(
            f"alias {alias!r} points at {record.serving!r}, which no longer exists: "
            f"run `llmops index rollback` or `llmops index refresh` to publish a new version"
        ) from exc


def describe_versions(client: Any, alias: str) -> dict[str, Any]:
    """Alias state for ``llmops index versions``."""
    record = read_alias(client, alias)
    rows = []
    for name in version_names(client, alias):
        col = client.get_collection(name, embedding_function=None)
        meta = col.metadata or {}
        state = "serving" if name == record.serving else ("previous" if name in record.history else "unpublished")
        rows.append({"version": name, "state": state, "count": col.count(), "embedder": meta.get("embedder")})
    return {"alias": alias, "serving": record.serving, "history": record.history, "versions": rows}
