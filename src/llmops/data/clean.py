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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from llmops.config import CleanParams
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


def normalize_text(text: str, form: str = "NFKC") -> str:
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


def _normalize(text: str, form: str, stats: CleanStats) -> str:
    return normalize_text(_strip(text, stats), form)


def clean_conversations(conversations: Iterable[Conversation], cfg: CleanParams) -> tuple[list[Conversation], CleanStats]:
    """Normalise every turn (format characters out of ids and metadata too), drop empty turns and
    conversations left without any, drop exact duplicates."""
    stats, seen, out = CleanStats(), set(), []
    for conv in conversations:
        stats.records_in += 1
        turns = []
        for turn in conv.turns:
            text = _normalize(turn.text, cfg.unicode_form, stats)[: cfg.max_turn_chars]
            if len(text) >= cfg.min_turn_chars:
                turns.append(Turn(role=turn.role, text=text, ts=turn.ts))
        if not turns:
            stats.emptied += 1
            continue
        key = content_hash(*(f"{t.role}:{t.text}" for t in turns))
        if cfg.drop_duplicates and key in seen:
            stats.duplicates += 1
            continue
        seen.add(key)
        ids = {"conversation_id": _strip(conv.conversation_id, stats), "metadata": _strip(conv.metadata, stats)}
        out.append(conv.model_copy(update={"turns": turns, **ids}))
    stats.records_out = len(out)
    return out, stats


def clean_documents(documents: Iterable[Document], cfg: CleanParams) -> tuple[list[Document], CleanStats]:
    """Normalise document text; when a doc_id repeats, the last version wins (it is the newest)."""
    stats, by_id = CleanStats(), {}
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
    stats, by_id = CleanStats(), {}
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
