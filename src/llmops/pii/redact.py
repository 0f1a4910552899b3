"""Pseudonymisation that keeps text useful for training: each detected value becomes a typed
placeholder, and the same value gets the same placeholder within one conversation
(``<PERSON_1>`` ... ``<PERSON_1>``, ``<EMAIL_ADDRESS_1>``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmops.config import RedactParams
from llmops.records import Conversation, Document, FeedbackEvent


@dataclass
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
    kept: list[Span] = []
    for s in sorted(spans, key=lambda s: (-s.score, -(s.end - s.start), s.start)):
        if all(s.end <= k.start or s.start >= k.end for k in kept):
            kept.append(s)
    return sorted(kept, key=lambda s: s.start)


class Pseudonymizer:
    """Hands out ``<TYPE_n>`` placeholders; one instance per conversation keeps them consistent."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}

    def placeholder(self, entity_type: str, value: str) -> str:
        key = (entity_type, " ".join(value.split()).casefold())
        if key not in self._ids:
            self._counts[entity_type] = self._counts.get(entity_type, 0) + 1
            self._ids[key] = f"<{entity_type}_{self._counts[entity_type]}>"
        return self._ids[key]

    def apply(self, text: str, spans: Sequence[Span]) -> str:
        out, last = [], 0
        for s in resolve_overlaps(spans):
            out.append(text[last : s.start])
            out.append(self.placeholder(s.entity_type, text[s.start : s.end]))
            last = s.end
        out.append(text[last:])
        return "".join(out)


class Redactor:
    """Presidio analysis in batches (spaCy ``nlp.pipe``) + consistent pseudonyms."""

    def __init__(self, cfg: RedactParams, analyzer: Any = None) -> None:
        from llmops.pii.detect import build_analyzer

        self.cfg = cfg
        self.analyzer = analyzer or build_analyzer(cfg.spacy_model, cfg.language)
        self.stats = RedactStats()

    def detect(self, texts: Sequence[str], entities: Sequence[str] | None = None) -> list[list[Span]]:
        """Spans per text, batched through the NLP engine."""
        from presidio_analyzer import BatchAnalyzerEngine

        entities = list(entities or self.cfg.entities)
        batch = BatchAnalyzerEngine(analyzer_engine=self.analyzer)
        results = batch.analyze_iterator(
            list(texts),
            language=self.cfg.language,
            entities=entities,
            score_threshold=self.cfg.score_threshold,
            batch_size=self.cfg.batch_size,
        )
        spans = [[Span(r.entity_type, r.start, r.end, r.score) for r in res] for res in results]
        self.stats.texts += len(texts)
        for s in spans:
            self.stats.add(resolve_overlaps(s))
        return spans

    def redact_texts(self, texts: Sequence[str], entities: Sequence[str] | None = None) -> list[str]:
        """Redact independent texts (each gets its own placeholder numbering)."""
        return [Pseudonymizer().apply(t, s) for t, s in zip(texts, self.detect(texts, entities), strict=True)]

    def redact_conversations(self, conversations: Sequence[Conversation], *, progress: bool = False) -> list[Conversation]:
        texts = [t.text for c in conversations for t in c.turns]
        spans = iter(self.detect(texts))
        text_iter = iter(texts)
        out = []
        items: Iterable[Conversation] = conversations
        if progress:
            from tqdm import tqdm

            items = tqdm(conversations, desc="pseudonymise", unit="conv")
        for conv in items:
            pseudo = Pseudonymizer()
            turns = [t.model_copy(update={"text": pseudo.apply(next(text_iter), next(spans))}) for t in conv.turns]
            out.append(conv.model_copy(update={"turns": turns}))
        return out

    def redact_documents(self, documents: Sequence[Document]) -> list[Document]:
        texts = self.redact_texts([d.text for d in documents], self.cfg.document_entities)
        return [d.model_copy(update={"text": t}) for d, t in zip(documents, texts, strict=True)]

    def redact_feedback(self, events: Sequence[FeedbackEvent]) -> list[FeedbackEvent]:
        fields = [(e.query, e.answer, e.correction or "") for e in events]
        flat = [x for triple in fields for x in triple]
        spans = self.detect(flat)
        out = []
        for i, ev in enumerate(events):
            pseudo = Pseudonymizer()
            q, a, c = (pseudo.apply(flat[3 * i + j], spans[3 * i + j]) for j in range(3))
            out.append(ev.model_copy(update={"query": q, "answer": a, "correction": c or None}))
        return out
