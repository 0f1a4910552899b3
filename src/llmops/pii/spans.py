"""Detected spans and the counts a redaction run reports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


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
