"""Text normalisation and exact de-duplication.

Normalisation is conservative: Unicode form (NFKC by default), control characters removed, runs of
spaces collapsed, paragraph breaks kept (chunking uses them). Duplicates are detected on the
normalised, case-folded content, so the same conversation delivered twice is kept once.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from llmops.config import CleanParams
from llmops.records import Conversation, Document, FeedbackEvent, Turn

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2028\u2029\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def normalize_text(text: str, form: str = "NFKC") -> str:
    """Normalise Unicode, drop control/zero-width characters, collapse spaces, keep paragraphs."""
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

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def clean_conversations(conversations: Iterable[Conversation], cfg: CleanParams) -> tuple[list[Conversation], CleanStats]:
    """Normalise every turn, drop empty turns and conversations left without any, drop exact duplicates."""
    stats, seen, out = CleanStats(), set(), []
    for conv in conversations:
        stats.records_in += 1
        turns = []
        for turn in conv.turns:
            text = normalize_text(turn.text, cfg.unicode_form)[: cfg.max_turn_chars]
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
        out.append(conv.model_copy(update={"turns": turns}))
    stats.records_out = len(out)
    return out, stats


def clean_documents(documents: Iterable[Document], cfg: CleanParams) -> tuple[list[Document], CleanStats]:
    """Normalise document text; when a doc_id repeats, the last version wins (it is the newest)."""
    stats, by_id = CleanStats(), {}
    for doc in documents:
        stats.records_in += 1
        text = normalize_text(doc.text, cfg.unicode_form)
        if not text:
            stats.emptied += 1
            continue
        if doc.doc_id in by_id:
            stats.duplicates += 1
        by_id[doc.doc_id] = doc.model_copy(update={"text": text, "title": doc.title and normalize_text(doc.title)})
    out = list(by_id.values())
    stats.records_out = len(out)
    return out, stats


def clean_feedback(events: Iterable[FeedbackEvent], cfg: CleanParams) -> tuple[list[FeedbackEvent], CleanStats]:
    """Normalise query/answer/correction text; a generation_id seen twice keeps its latest event."""
    stats, by_id = CleanStats(), {}
    for ev in events:
        stats.records_in += 1
        update = {
            "query": normalize_text(ev.query, cfg.unicode_form),
            "answer": normalize_text(ev.answer, cfg.unicode_form),
            "correction": ev.correction and normalize_text(ev.correction, cfg.unicode_form),
        }
        if not update["query"]:
            stats.emptied += 1
            continue
        if ev.generation_id in by_id:
            stats.duplicates += 1
            if by_id[ev.generation_id].ts > ev.ts:
                continue
        by_id[ev.generation_id] = ev.model_copy(update=update)
    out = sorted(by_id.values(), key=lambda e: e.ts)
    stats.records_out = len(out)
    return out, stats
