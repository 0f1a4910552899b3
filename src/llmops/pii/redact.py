"""Pseudonymisation that keeps text useful for training: each detected value becomes a typed
placeholder, and the same value gets the same placeholder within one conversation
(``<PERSON_1>`` ... ``<PERSON_1>``, ``<EMAIL_ADDRESS_1>``). Other Presidio anonymizer operators
(replace, redact, mask, hash) can be chosen per entity type (``redact.operators``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from llmops.config import RedactParams
from llmops.pii.spans import RedactStats, Span, resolve_overlaps
from llmops.pii.vault import Vault
from llmops.records import Conversation, Document, FeedbackEvent

__all__ = ["Pseudonymizer", "RedactStats", "Redactor", "Span", "resolve_overlaps"]

_OPERATOR_PARAMS: dict[str, dict[str, Any]] = {
    "mask": {"masking_char": "*", "chars_to_mask": 10_000, "from_end": False},
    "hash": {"hash_type": "sha256"},
    "redact": {},
}


def _operator(name: str) -> Any:
    from presidio_anonymizer.operators import Hash, Mask, Redact

    return {"mask": Mask, "hash": Hash, "redact": Redact}[name]()


class Pseudonymizer:
    """Hands out ``<TYPE_n>`` placeholders; one instance per conversation keeps them consistent."""

    def __init__(self, operators: dict[str, str] | None = None, scope: str | None = None) -> None:
        self._ids: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}
        self.operators = operators or {}
        self.scope = scope
        self.new: list[tuple[str, str, str]] = []  # (scope, placeholder, value) for the vault

    def placeholder(self, entity_type: str, value: str) -> str:
        key = (entity_type, " ".join(value.split()).casefold())
        if key not in self._ids:
            self._counts[entity_type] = self._counts.get(entity_type, 0) + 1
            self._ids[key] = f"<{entity_type}_{self._counts[entity_type]}>"
            if self.scope is not None:
                self.new.append((self.scope, self._ids[key], value))
        return self._ids[key]

    def replace(self, entity_type: str, value: str) -> str:
        op = self.operators.get(entity_type, "pseudonymize")
        if op == "pseudonymize":
            return self.placeholder(entity_type, value)
        if op == "replace":
            return f"<{entity_type}>"
        return _operator(op).operate(value, _OPERATOR_PARAMS[op])

    def apply(self, text: str, spans: Sequence[Span]) -> str:
        out, last = [], 0
        for s in resolve_overlaps(spans):
            out.append(text[last : s.start])
            out.append(self.replace(s.entity_type, text[s.start : s.end]))
            last = s.end
        out.append(text[last:])
        return "".join(out)


class Redactor:
    """Detection (fast rules + batched NER by default, or Presidio's AnalyzerEngine) + pseudonyms.

    ``vault``: where reversible mappings go when ``cfg.vault`` is on (built at the edge from Settings).
    """

    def __init__(self, cfg: RedactParams, analyzer: Any = None, vault: Vault | None = None) -> None:
        self.cfg = cfg
        self.analyzer = analyzer
        if analyzer is None and cfg.engine == "fast":
            from llmops.pii.detect import FastAnalyzer

            self.analyzer = FastAnalyzer(cfg)
        elif analyzer is None:
            from llmops.pii.detect import build_analyzer

            self.analyzer = build_analyzer(cfg.spacy_model, cfg.language)
        if cfg.vault and vault is None:
            from llmops.errors import ConfigError

            raise ConfigError("redact.vault is on but no vault was given: set LLMOPS_PII_VAULT_KEY (see README)")
        self.vault = vault if cfg.vault else None
        self.stats = RedactStats()

    @classmethod
    def from_settings(cls, cfg: RedactParams, settings: Any) -> Redactor:
        """The redactor every sink uses: with the vault the settings point at when ``redact.vault`` is on."""
        from llmops.pii.vault import open_vault

        return cls(cfg, vault=open_vault(cfg, settings))

    def detect(self, texts: Sequence[str], entities: Sequence[str] | None = None) -> list[list[Span]]:
        """Spans per text, batched."""
        entities = list(entities or self.cfg.entities)
        from llmops.pii.detect import FastAnalyzer

        if isinstance(self.analyzer, FastAnalyzer):
            spans = self.analyzer.analyze(texts, entities)
        else:
            spans = self._detect_presidio(texts, entities)
        self.stats.texts += len(texts)
        for s in spans:
            self.stats.add(resolve_overlaps(s))
        return spans

    def _detect_presidio(self, texts: Sequence[str], entities: list[str]) -> list[list[Span]]:
        from presidio_analyzer import BatchAnalyzerEngine

        batch = BatchAnalyzerEngine(analyzer_engine=self.analyzer)
        results = batch.analyze_iterator(
            list(texts),
            language=self.cfg.language,
            entities=entities,
            score_threshold=self.cfg.score_threshold,
            batch_size=self.cfg.batch_size,
        )
        return [[Span(r.entity_type, r.start, r.end, r.score) for r in res] for res in results]

    def _pseudonymizer(self, scope: str | None) -> Pseudonymizer:
        return Pseudonymizer(self.cfg.operators, scope if self.vault is not None else None)

    def _store(self, pseudos: Iterable[Pseudonymizer]) -> None:
        if self.vault is not None:
            self.vault.put_many(e for p in pseudos for e in p.new)

    def redact_texts(self, texts: Sequence[str], entities: Sequence[str] | None = None) -> list[str]:
        """Redact independent texts (each gets its own placeholder numbering)."""
        return [Pseudonymizer(self.cfg.operators).apply(t, s) for t, s in zip(texts, self.detect(texts, entities), strict=True)]

    def redact_groups(
        self, groups: Sequence[tuple[str, Sequence[str]]], *, progress: bool = False, desc: str = "pseudonymise"
    ) -> list[list[str]]:
        """Redact ``(scope, texts)`` groups in one detection pass; the texts of a group share one
        pseudonymiser (same value -> same placeholder), and the vault files its values under ``scope``."""
        texts = [t for _, group in groups for t in group]
        spans = iter(self.detect(texts))
        items: Iterable[tuple[str, Sequence[str]]] = groups
        if progress:
            from tqdm import tqdm

            items = tqdm(groups, desc=desc, unit="item")
        out, pseudos = [], []
        for scope, group in items:
            pseudo = self._pseudonymizer(scope)
            out.append([pseudo.apply(t, next(spans)) for t in group])
            pseudos.append(pseudo)
        self._store(pseudos)
        return out

    def redact_conversations(self, conversations: Sequence[Conversation], *, progress: bool = False) -> list[Conversation]:
        groups = [(f"conversation:{c.conversation_id}", [t.text for t in c.turns]) for c in conversations]
        redacted = self.redact_groups(groups, progress=progress)
        return [
            c.model_copy(update={"turns": [t.model_copy(update={"text": x}) for t, x in zip(c.turns, texts, strict=True)]})
            for c, texts in zip(conversations, redacted, strict=True)
        ]

    def redact_documents(self, documents: Sequence[Document]) -> list[Document]:
        texts = self.redact_texts([d.text for d in documents], self.cfg.document_entities)
        return [d.model_copy(update={"text": t}) for d, t in zip(documents, texts, strict=True)]

    def redact_feedback(self, events: Sequence[FeedbackEvent]) -> list[FeedbackEvent]:
        """Query, answer and correction of each event, scoped by its generation id."""
        groups = [(f"feedback:{e.generation_id}", [e.query, e.answer, e.correction or ""]) for e in events]
        return [
            e.model_copy(update={"query": q, "answer": a, "correction": c or None})
            for e, (q, a, c) in zip(events, self.redact_groups(groups), strict=True)
        ]

    def redact_corrections(self, generation_ids: Sequence[str], corrections: Sequence[str]) -> list[str]:
        """Free-text corrections that arrive after their generation, scoped like it (``feedback:<id>``)."""
        groups = [(f"feedback:{g}", [c]) for g, c in zip(generation_ids, corrections, strict=True)]
        return [texts[0] for texts in self.redact_groups(groups)]
