"""Split documents into overlapping word windows that respect paragraph boundaries.

A chunk id is a hash of the doc id and the normalised chunk text, so an unchanged chunk keeps its id
(and its vector) across runs, and a changed one gets a new id.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from llmops.records import Chunk, Document


def doc_hash(doc: Document) -> str:
    return hashlib.sha256(f"{doc.title or ''}\x1f{doc.text}".encode()).hexdigest()[:16]


def chunk_id(doc_id: str, text: str) -> str:
    norm = " ".join(text.split()).casefold()
    return hashlib.sha256(f"{doc_id}\x1f{norm}".encode()).hexdigest()[:24]


def _windows(paragraphs: list[list[str]], size: int, overlap: int) -> list[list[str]]:
    """Greedy packing of paragraphs into windows of about ``size`` words, carrying ``overlap`` words."""
    windows: list[list[str]] = []
    current: list[str] = []
    fresh = 0  # words in ``current`` not carried over from the previous window

    def flush() -> None:
        nonlocal current, fresh
        windows.append(current)
        current, fresh = (current[-overlap:] if overlap else []), 0

    for para in paragraphs:
        while para:
            room = size - len(current)
            if len(para) <= room:
                current, fresh, para = current + para, fresh + len(para), []
            elif fresh and len(para) <= size - overlap:
                flush()  # start a new window rather than split a paragraph that fits in one
            else:
                current, fresh, para = current + para[:room], fresh + room, para[room:]
                flush()
    if fresh:
        windows.append(current)
    return windows


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def _units(text: str, mode: str) -> list[list[str]]:
    """The units windows never split when they fit: paragraphs, or sentences within paragraphs."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    if mode == "sentence":
        return [s.split() for p in paragraphs for s in _SENTENCE_END.split(p) if s.strip()]
    if mode != "paragraph":
        raise ValueError(f"chunk mode {mode!r} is unknown: use 'paragraph' or 'sentence'")
    return [p.split() for p in paragraphs]


def chunk_document(doc: Document, size: int = 200, overlap: int = 40, mode: str = "paragraph") -> list[Chunk]:
    if overlap >= size:
        raise ValueError(f"chunk overlap ({overlap}) must be smaller than chunk size ({size})")
    paragraphs = _units(doc.text, mode)
    h = doc_hash(doc)
    chunks, seen = [], set()
    for pos, words in enumerate(_windows(paragraphs, size, overlap)):
        text = " ".join(words)
        cid = chunk_id(doc.doc_id, text)
        if cid in seen:  # a page repeating a paragraph would otherwise collide
            continue
        seen.add(cid)
        chunks.append(Chunk(chunk_id=cid, doc_id=doc.doc_id, doc_hash=h, position=pos, text=text, title=doc.title))
    return chunks


def chunk_documents(docs: Iterable[Document], size: int = 200, overlap: int = 40, mode: str = "paragraph") -> list[Chunk]:
    """Chunk every document (see :func:`chunk_document`)."""
    return [c for d in docs for c in chunk_document(d, size, overlap, mode)]
