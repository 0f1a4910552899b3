"""Text normalisation and exact de-duplication.

Normalisation is conservative: invisible format characters (Unicode Cf) removed everywhere, ids and
metadata included, Unicode form (NFKC by default), control characters removed, runs of
spaces collapsed, paragraph breaks kept (chunking uses them). Duplicates are detected on the
normalised, case-folded content, so the same conversation delivered twice is kept once.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from llmops.config import CleanParams
from llmops.data.incremental import (
    AtomicLines,
    Counts,
    PartitionedOutput,
    RecordCache,
    batched,
    iter_lines,
    partitions,
    record_key,
)
from llmops.records import Conversation, Document, FeedbackEvent, Turn

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def strip_format_chars(text: str) -> tuple[str, int]:
    """``text`` without invisible characters, and how many were removed.

    Invisible means what the PII detector's shadow ignores (:func:`llmops.pii.normalize.is_invisible`): every
    Unicode format character (Cf: zero-width space/joiners, word joiner, soft hyphen, bidi controls such as
    U+202E, BOM, tag characters) and a few blank fillers. They can split a card number or a name for a
    detector, flip how a text reads or hide instructions; no training text needs them.
    """
    from llmops.pii.normalize import strip_invisible

    out = strip_invisible(text)
    return out, len(text) - len(out)


def normalize_text(text: str, form: Literal["NFC", "NFKC"] = "NFKC") -> str:
    """Drop format (Cf) and control characters, normalise Unicode, collapse spaces, keep paragraphs."""
    text, _ = strip_format_chars(text)
    text = unicodedata.normalize(form, text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def content_hash(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.casefold().encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()


@dataclass
class CleanStats:
    records_in: int = 0
    records_out: int = 0
    duplicates: int = 0
    emptied: int = 0
    format_chars: int = 0  # invisible format characters removed (zero-width, bidi controls, soft hyphens ...)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _strip(value: Any, stats: CleanStats) -> Any:
    """Format characters out of every string in a JSON-like value (metadata, ids)."""
    if isinstance(value, str):
        value, n = strip_format_chars(value)
        stats.format_chars += n
        return value
    if isinstance(value, dict):
        return {_strip(k, stats): _strip(v, stats) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip(v, stats) for v in value]
    return value


def _normalize(text: str, form: Literal["NFC", "NFKC"], stats: CleanStats) -> str:
    return normalize_text(_strip(text, stats), form)


def clean_conversation(conv: Conversation, cfg: CleanParams, stats: CleanStats) -> Conversation | None:
    """One conversation normalised (format characters out of ids and metadata too), empty turns dropped;
    None (counted as emptied) when no turn is left."""
    turns = []
    for turn in conv.turns:
        text = _normalize(turn.text, cfg.unicode_form, stats)[: cfg.max_turn_chars]
        if len(text) >= cfg.min_turn_chars:
            turns.append(Turn(role=turn.role, text=text, ts=turn.ts))
    if not turns:
        stats.emptied += 1
        return None
    ids = {"conversation_id": _strip(conv.conversation_id, stats), "metadata": _strip(conv.metadata, stats)}
    return conv.model_copy(update={"turns": turns, **ids})


def duplicate_key(conv: Conversation) -> str:
    """What makes two cleaned conversations exact duplicates: their turns' roles and case-folded text."""
    return content_hash(*(f"{t.role}:{t.text}" for t in conv.turns))


def clean_conversations(conversations: Iterable[Conversation], cfg: CleanParams) -> tuple[list[Conversation], CleanStats]:
    """Normalise every turn (format characters out of ids and metadata too), drop empty turns and
    conversations left without any, drop exact duplicates."""
    stats, seen, out = CleanStats(), set(), []
    for conv in conversations:
        stats.records_in += 1
        cleaned = clean_conversation(conv, cfg, stats)
        if cleaned is None:
            continue
        key = duplicate_key(cleaned)
        if cfg.drop_duplicates and key in seen:
            stats.duplicates += 1
            continue
        seen.add(key)
        out.append(cleaned)
    stats.records_out = len(out)
    return out, stats


def clean_documents(documents: Iterable[Document], cfg: CleanParams) -> tuple[list[Document], CleanStats]:
    """Normalise document text; when a doc_id repeats, the last version wins (it is the newest)."""
    stats, by_id = CleanStats(), dict[str, Document]()
    for doc in documents:
        stats.records_in += 1
        text = _normalize(doc.text, cfg.unicode_form, stats)
        if not text:
            stats.emptied += 1
            continue
        if doc.doc_id in by_id:
            stats.duplicates += 1
        title = doc.title and _normalize(doc.title, cfg.unicode_form, stats)
        by_id[doc.doc_id] = doc.model_copy(update={"text": text, "title": title})
    out = list(by_id.values())
    stats.records_out = len(out)
    return out, stats


def clean_feedback(events: Iterable[FeedbackEvent], cfg: CleanParams) -> tuple[list[FeedbackEvent], CleanStats]:
    """Normalise query/answer/correction text; a generation_id seen twice keeps its latest event."""
    stats, by_id = CleanStats(), dict[str, FeedbackEvent]()
    for ev in events:
        stats.records_in += 1
        update = {
            "query": _normalize(ev.query, cfg.unicode_form, stats),
            "answer": _normalize(ev.answer, cfg.unicode_form, stats),
            "correction": ev.correction and _normalize(ev.correction, cfg.unicode_form, stats),
            "generation_id": _strip(ev.generation_id, stats),
        }
        if not update["query"]:
            stats.emptied += 1
            continue
        gid = update["generation_id"]
        if gid in by_id:
            stats.duplicates += 1
            if by_id[gid].ts > ev.ts:
                continue
        by_id[gid] = ev.model_copy(update=update)
    out = sorted(by_id.values(), key=lambda e: e.ts)
    stats.records_out = len(out)
    return out, stats


def clean_partitioned(raw_dir: Path, out: PartitionedOutput, cache: RecordCache, cfg: CleanParams) -> tuple[CleanStats, Counts]:
    """Clean day partitions of conversations incrementally (see :mod:`llmops.data.incremental`).

    Exact duplicates are dropped across the whole archive in partition order: each partition keeps the
    64-bit duplicate keys of what it kept and dropped (``_keys/<day>.u64``), and a reused partition is
    recomputed when one of its kept conversations became a duplicate of an earlier one, or one it dropped
    lost its original. Memory: the set of those keys (8 bytes of key per conversation) and one batch.
    """
    stats, counts = CleanStats(), Counts()
    keys_dir = out.directory / "_keys"
    keys_dir.mkdir(parents=True, exist_ok=True)
    seen: set[int] = set()
    reused: list[str] = []  # partitions reused whole: their cache entries stay (one write for all of them)
    for part in partitions(raw_dir):
        name, md5 = part.stem, out.digest(part)
        counts.partitions += 1
        entry = out.reusable(name, md5)
        keys_file = keys_dir / f"{name}.u64"
        if entry is not None:
            kept, dropped = _read_keys(keys_file, entry)
            kept_set = set(kept or ())
            if kept is not None and seen.isdisjoint(kept_set) and all(d in seen or d in kept_set for d in dropped or ()):
                seen.update(kept_set)
                for k in ("records_in", "records_out", "duplicates", "emptied"):
                    setattr(stats, k, getattr(stats, k) + int(entry[k]))
                counts.reused += int(entry["records_in"])
                counts.partitions_reused += 1
                reused.append(name)
                continue
            out.entries.pop(name, None)
        pstats = CleanStats()
        writer = AtomicLines(out.path(name))
        kept, dropped = [], []
        try:
            for batch in batched(iter_lines(part), 1000):
                keys = [record_key(out.fp, line) for _, line in batch]
                known = cache.get_many(keys, name)
                new = []
                for key, (_, line) in zip(keys, batch, strict=True):
                    pstats.records_in += 1
                    value = known.get(key)
                    if value is None:
                        cleaned = clean_conversation(Conversation.model_validate_json(line), cfg, pstats)
                        value = (
                            ""
                            if cleaned is None
                            else f"{duplicate_key(cleaned)[:16]}\t{cleaned.model_dump_json(exclude_none=True)}"
                        )
                        new.append((key, value))
                        counts.processed += 1
                    else:
                        counts.reused += 1
                        pstats.emptied += value == ""
                    if not value:
                        continue
                    dkey, record = int(value[:16], 16), value[17:]
                    if cfg.drop_duplicates and dkey in seen:
                        pstats.duplicates += 1
                        dropped.append(dkey)
                        continue
                    seen.add(dkey)
                    kept.append(dkey)
                    writer.write(record)
                cache.put_many(new, name)
        except BaseException:
            writer.abort()
            raise
        writer.commit()
        pstats.records_out = len(kept)
        with keys_file.open("wb") as fh:
            array("Q", kept + dropped).tofile(fh)
        out.record(name, md5, kept=len(kept), **{k: v for k, v in pstats.as_dict().items() if k != "format_chars"})
        counts.partitions_written += 1
        for k, v in pstats.as_dict().items():
            setattr(stats, k, getattr(stats, k) + v)
    cache.keep(reused)
    counts.partitions_removed = out.finish()
    for keys_file in keys_dir.glob("*.u64"):
        if keys_file.stem not in out.entries:
            keys_file.unlink()
    counts.deleted = cache.sweep()
    return stats, counts


def _read_keys(path: Path, entry: dict[str, Any]) -> tuple[list[int] | None, list[int] | None]:
    """A partition's kept and dropped duplicate keys; (None, None) when the file is missing or does not match."""
    if not path.exists():
        return None, None
    keys = array("Q")
    with path.open("rb") as fh:
        keys.frombytes(fh.read())
    n = int(entry.get("kept", -1))
    if n < 0 or n > len(keys) or len(keys) != n + int(entry.get("duplicates", 0)):
        return None, None
    return keys[:n].tolist(), keys[n:].tolist()
