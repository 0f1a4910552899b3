"""Detected spans and the counts a redaction run reports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmops.pii.normalize import Shadow


@dataclass(frozen=True)
class Span:
    entity_type: str
    start: int
    end: int
    score: float


@dataclass
class RedactStats:
    texts: int = 0
    entities: dict[str, int] = field(default_factory=dict)

    def add(self, spans: Iterable[Span]) -> None:
        for s in spans:
            self.entities[s.entity_type] = self.entities.get(s.entity_type, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {"texts": self.texts, "entities": dict(sorted(self.entities.items())), "total": sum(self.entities.values())}


def resolve_overlaps(spans: Sequence[Span]) -> list[Span]:
    """Keep non-overlapping spans, preferring higher score, then longer span."""
    import bisect

    starts: list[int] = []  # kept spans never overlap, so sorted by start they are sorted by end too
    kept: list[Span] = []
    for s in sorted(spans, key=lambda s: (-s.score, -(s.end - s.start), s.start)):
        i = bisect.bisect_left(starts, s.start)
        if (i == 0 or kept[i - 1].end <= s.start) and (i == len(kept) or s.end <= kept[i].start):
            starts.insert(i, s.start)
            kept.insert(i, s)
    return kept


# Which type wins when two findings overlap: validated identifiers over the looser context types, so
# "SSN 536-22-8714" is one US_SSN and never an address that keeps six of the digits.
TYPE_RANK = {
    "CREDIT_CARD": 4,
    "IBAN_CODE": 4,
    "US_SSN": 4,
    "UK_NINO": 4,
    "EMAIL_ADDRESS": 4,
    "IP_ADDRESS": 4,
    "URL": 4,
    "MAC_ADDRESS": 4,
    "CRYPTO": 4,
    "NATIONAL_ID": 3,
    "VEHICLE_ID": 3,
    "PHONE_NUMBER": 2,
    "ACCOUNT_NUMBER": 2,
    "US_DRIVER_LICENSE": 2,
    "DATE_OF_BIRTH": 2,
}


def _rank(s: Span) -> tuple[int, float, int]:
    return (TYPE_RANK.get(s.entity_type, 1), s.score, s.end - s.start)


def grow_to_tokens(text: str, s: Span) -> Span:
    """``s`` widened to whole words: a value is never cut inside a run of letters or digits."""
    start, end = s.start, s.end
    while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum() and text[end - 1].isalnum():
        end += 1
    return s if (start, end) == (s.start, s.end) else Span(s.entity_type, start, end, s.score)


def consolidate(text: str, spans: Sequence[Span]) -> list[Span]:
    """Non-overlapping spans that each cover a whole value: spans grow to word boundaries; where spans
    overlap, a higher-ranked type (:data:`TYPE_RANK`) that overlaps a lower one drops it, and spans of
    equal rank merge into their union (with the stronger one's type and score)."""
    grown = [grow_to_tokens(text, s) for s in spans if s.end > s.start]
    kept: list[Span] = []
    for s in sorted(grown, key=_rank, reverse=True):
        hits = [k for k in kept if k.start < s.end and s.start < k.end]
        if not hits:
            kept.append(s)
            continue
        if any(TYPE_RANK.get(k.entity_type, 1) > TYPE_RANK.get(s.entity_type, 1) for k in hits):
            continue  # a weaker type touching a validated identifier: the identifier is the value
        if all(k.start <= s.start and s.end <= k.end for k in hits):
            continue
        best = max(hits, key=_rank)
        merged = Span(best.entity_type, min(s.start, *(k.start for k in hits)), max(s.end, *(k.end for k in hits)), best.score)
        kept = [k for k in kept if k not in hits] + [merged]
    return sorted(kept, key=lambda x: (x.start, x.end))


def to_original(sh: Shadow, spans: list[Span]) -> list[Span]:
    """Shadow spans -> whole, non-overlapping original spans; no span covers a placeholder."""
    spans = consolidate(sh.text, spans)
    inert = sh.inert_positions()
    if inert:
        spans = [piece for s in spans for piece in _cut(sh.text, s, inert)]
    if sh.offsets is None:
        return spans
    return [Span(s.entity_type, *sh.to_original(s.start, s.end), s.score) for s in spans]


def _cut(text: str, s: Span, inert: list[int]) -> list[Span]:
    """``s`` without the placeholders inside it: the pieces around them that still hold a letter or digit."""
    inside = [p for p in inert if s.start <= p < s.end]
    if not inside:
        return [s]
    out, start = [], s.start
    for p in [*inside, s.end]:
        piece = text[start:p]
        lead = len(piece) - len(piece.lstrip(" ,.;:-"))
        piece = piece.strip(" ,.;:-")
        if any(c.isalnum() for c in piece):
            out.append(Span(s.entity_type, start + lead, start + lead + len(piece), s.score))
        start = p + 1
    return out
