"""Pseudonymisation that keeps text useful for training: each detected value becomes a typed
placeholder, and the same value gets the same placeholder within one conversation
(``<PERSON_1>`` ... ``<PERSON_1>``, ``<EMAIL_ADDRESS_1>``). Other Presidio anonymizer operators
(replace, redact, mask, hash) can be chosen per entity type (``redact.operators``)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llmops.config import RedactParams
from llmops.pii.libraries import load_detection_libraries
from llmops.pii.scope import answer_spans, metadata_texts, rebuild_metadata, spread_values, whole_value_spans
from llmops.pii.spans import RedactStats, Span, resolve_overlaps
from llmops.pii.vault import Vault, hashed_id
from llmops.records import Conversation, Document, FeedbackEvent

if TYPE_CHECKING:
    from llmops.parallel import Executor

__all__ = ["Pseudonymizer", "RedactStats", "Redactor", "Span", "resolve_overlaps"]

_OPERATOR_PARAMS: dict[str, dict[str, Any]] = {
    "mask": {"masking_char": "*", "chars_to_mask": 10_000, "from_end": False},
    "hash": {"hash_type": "sha256"},
    "redact": {},
}


_ID_SEPARATORS = re.compile(r"[_\-:/+]+")


def _id_words(value: str) -> str:
    """``maria_gonzalez-1985`` -> ``maria gonzalez 1985`` (an e-mail keeps its dots) for detection."""
    spaced = _ID_SEPARATORS.sub(" ", value)
    return spaced if "@" in value else spaced.replace(".", " ")


def _has_first_name(spaced_id: str) -> bool:
    """A word of an id is a first name of the name lexicon ("ticket wilhelmina strand 2291")."""
    from llmops.pii.names import lexicon

    first, _ = lexicon()
    return any(len(w) > 2 and w.isalpha() and w.casefold() in first for w in spaced_id.split())  # whole words only


def _operator(name: str) -> Any:
    load_detection_libraries()
    from presidio_anonymizer.operators import Hash, Mask, Redact

    operators: dict[str, Callable[[], Any]] = {"mask": Mask, "hash": Hash, "redact": Redact}
    return operators[name]()


class Pseudonymizer:
    """Hands out ``<TYPE_n>`` placeholders; one instance per conversation keeps them consistent."""

    def __init__(self, operators: Mapping[str, str] | None = None, scope: str | None = None) -> None:
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


# Values split over two texts are looked for in the last and first this many characters, among these types.
_SPLIT_WINDOW = 64
_SPLIT_ENTITIES = ("EMAIL_ADDRESS", "IBAN_CODE", "CREDIT_CARD", "PHONE_NUMBER")
# A phone carries no check digit: a join is one only after a phone cue ("call me on 415 555" / "0132") or
# from a "+" or "(" on, with digits and separators alone after the break, 7 to 15 digits in all (E.164), and
# a part holds a phone of its own only with 10 digits or more ("my phone is 020 7946" is a phone's start).
_SPLIT_PHONE_CUE = re.compile(
    r"\b(?:phone|call|tel|telephone|mobile|cell|reach|text|sms|whats ?app|dial|ring|contact)\b"
    r"|\b(?:my|his|her|their|our|your)\s+(?:number|no\.?|#)",
    re.IGNORECASE,
)
_PHONE_PART = re.compile(r"[\d\s().-]+")
_WHOLE_PHONE_DIGITS = 10


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def _phone_join(window: str, s: Span, cut: int) -> bool:
    """Is the PHONE_NUMBER span ``s`` of a join (break at ``cut``) one phone typed over two turns?"""
    value = window[s.start : s.end]
    cued = value[:1] in "+(" or _SPLIT_PHONE_CUE.search(window[: s.start]) is not None
    return cued and _PHONE_PART.fullmatch(window[cut : s.end]) is not None and 7 <= _digits(value) <= 15


def _holds(spans: Sequence[Span], part: Span, edge: int, *, at_end: bool, text: str = "", digits: int = 0) -> bool:
    """Does a text's own span of ``part``'s type cover ``part`` and reach the text's edge (its end, or its start),
    with at least ``digits`` digits of ``text``?"""
    return any(
        s.entity_type == part.entity_type
        and s.start <= part.start
        and s.end >= part.end
        and (s.end == edge if at_end else s.start == 0)
        and (not digits or _digits(text[s.start : s.end]) >= digits)
        for s in spans
    )


def _may_continue(tail: str, head: str) -> bool:
    """Can a value of :data:`_SPLIT_ENTITIES` run from ``tail`` into ``head``? Value characters on both sides of
    the break, and an @ near it (e-mail) or digits going on (IBAN, card): most turns end in punctuation."""
    end, start = tail.rstrip()[-1:], head.lstrip()[:1]
    if not (end.isalnum() or end in "@._-") or not (start.isalnum() or start in "@._-"):
        return False
    return "@" in tail or "@" in head or start.isdigit()


def public_channel(channel: str, allowed: Sequence[str]) -> str:
    """The channel as it may leave the boundary: a name of ``allowed`` (case-insensitive), the allowed name it
    starts with ("whatsapp:Ignatia Pellwether" -> "whatsapp"), or "other". A channel is a label, not free text:
    anything else in it is dropped, not judged by the detector."""
    folded = channel.strip().casefold()
    names = {a.casefold() for a in allowed}
    if folded in names:
        return folded
    head = re.split(r"[^a-z0-9_-]", folded, maxsplit=1)[0]
    return head if head in names else "other"


class Redactor:
    """Detection (fast rules + batched NER by default, or Presidio's AnalyzerEngine) + pseudonyms.

    ``vault``: where reversible mappings go when ``cfg.vault`` is on (built at the edge from Settings).
    ``id_key``: key of the keyed hash for identifiers that look like personal data (``cfg.hash_ids``);
    without one, a random key for this redactor's lifetime (ids consistent within it only):
    :meth:`from_settings` gives the stable key every sink uses.
    """

    def __init__(
        self,
        cfg: RedactParams,
        analyzer: Any = None,
        vault: Vault | None = None,
        id_key: bytes | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.cfg = cfg
        self._analyzer = analyzer
        self._executor = executor
        if cfg.vault and vault is None:
            from llmops.errors import ConfigError

            raise ConfigError("redact.vault is on but no vault was given: set LLMOPS_PII_VAULT_KEY (see README)")
        self.vault = vault if cfg.vault else None
        self.id_key = id_key if id_key is not None else secrets.token_bytes(32)
        self.stats = RedactStats()
        self.metadata_dropped = 0
        self.ids_hashed = 0
        self.channels_generalised = 0

    @property
    def analyzer(self) -> Any:
        """The detector, built on first use: a run whose records all come from a cache imports no detection
        library (Presidio, spaCy: ~7 CPU s of the redact stage's fixed cost)."""
        if self._analyzer is None and self.cfg.engine == "fast":
            from llmops.pii.detect import FastAnalyzer

            self._analyzer = FastAnalyzer(self.cfg, self._executor)
        elif self._analyzer is None:
            from llmops.pii.detect import build_analyzer

            self._analyzer = build_analyzer(self.cfg.spacy_model, self.cfg.language)
        return self._analyzer

    @property
    def analyzer_loaded(self) -> bool:
        return self._analyzer is not None

    @classmethod
    def from_settings(cls, cfg: RedactParams, settings: Any) -> Redactor:
        """The redactor every sink uses: the vault the settings point at when ``redact.vault`` is on, the
        id-hash key of this state directory, and the Dask cluster of ``LLMOPS_DASK_ADDRESS`` when set."""
        from llmops.pii.vault import id_hash_key, open_vault

        executor = None
        if getattr(settings, "dask_address", None):
            from llmops.parallel import DaskExecutor

            executor = DaskExecutor(settings.dask_address)
        return cls(cfg, vault=open_vault(cfg, settings), id_key=id_hash_key(settings), executor=executor)

    def analyze(self, texts: Sequence[str], entities: Sequence[str] | None = None) -> list[list[Span]]:
        """Spans per text above ``cfg.score_threshold``: the one detection path of redaction and the leak scan."""
        if not texts:
            return []  # nothing to detect: no detector to build
        entities = list(entities or self.cfg.entities)
        from llmops.pii.detect import FastAnalyzer

        if isinstance(self.analyzer, FastAnalyzer):
            return self.analyzer.analyze(texts, entities)
        return self._detect_presidio(texts, entities)

    def detect(self, texts: Sequence[str], entities: Sequence[str] | None = None) -> list[list[Span]]:
        """Spans per text, batched, counted in :attr:`stats`."""
        spans = self.analyze(texts, entities)
        self.stats.texts += len(texts)
        for s in spans:
            self.stats.add(resolve_overlaps(s))
        return spans

    def _detect_presidio(self, texts: Sequence[str], entities: list[str]) -> list[list[Span]]:
        load_detection_libraries()
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

    def public_ids(self, ids: Sequence[str], flags: Callable[[Sequence[str]], list[bool]] | None = None) -> list[str]:
        """Identifiers as they may leave the boundary: replaced by a keyed hash (``anon-...``) when
        ``cfg.hash_ids`` is ``all``, or ``pii`` and the id (or its words: ``call-4155550100``) holds a structured
        identifier (e-mail, phone, card, SSN, IBAN ...) or a first name of the name lexicon
        (``ticket-wilhelmina-strand-2291``). Other names inside ids are not judged: use ``all`` for ids built
        from customers' names. ``flags``: :meth:`id_flags` with its verdicts kept elsewhere (a cache)."""
        if self.cfg.hash_ids == "none" or not ids:
            return list(ids)
        flagged = [True] * len(ids) if self.cfg.hash_ids == "all" else (flags or self.id_flags)(ids)
        self.ids_hashed += sum(flagged)
        return [hashed_id(i, self.id_key) if f else i for i, f in zip(ids, flagged, strict=True)]

    def id_flags(self, ids: Sequence[str]) -> list[bool]:
        """Per id: does it (or its words) hold a structured identifier or a lexicon first name? (``hash_ids: pii``;
        the detector runs.)"""
        if not ids:
            return []
        # Structured types only: NER reads "gen canary 1" as a name, and an id is no sentence to judge names in.
        from llmops.pii.detect import NER_LABELS

        structured = [e for e in self.cfg.entities if e not in NER_LABELS.values()]
        spaced = [_id_words(i) for i in ids]
        spans = self.analyze([*ids, *spaced], structured)
        named = [_has_first_name(s) for s in spaced]
        return [bool(a) or bool(b) or n for a, b, n in zip(spans[: len(ids)], spans[len(ids) :], named, strict=True)]

    def split_values(self, groups: Sequence[Sequence[str]], detected: Sequence[Sequence[Span]]) -> list[list[list[Span]]]:
        """Spans of values split over two consecutive texts of a group, per group and text: a customer who hits
        enter mid-value ("halvard.teasdale" / "@fastmail.fm", "ES9121000418" / "450200051332"). The end of each
        text and the start of the next are joined (directly and with a space), the structured types that carry
        their own check (e-mail, IBAN, card) detected in the join, and phones where a cue or their shape says so
        (:func:`_phone_join`); a value that crosses the join is a span in both.
        ``detected``: the spans of every text of the groups, in order (from :meth:`detect`): a value one text holds
        whole at its end or start is that text's, not split (the join only glued a neighbour's word to it)."""
        from llmops.pii.normalize import shadow

        entities = [e for e in _SPLIT_ENTITIES if e in self.cfg.entities]
        joins: list[tuple[int, int, int, int, int]] = []  # group, text, tail start, tail length, separator length
        windows: list[str] = []
        own = iter(detected)
        spans_of = [[next(own) for _ in texts] for texts in groups]  # per group and text
        for g, texts in enumerate(groups):
            for i in range(len(texts) - 1):
                a, b = texts[i], texts[i + 1]
                if not entities or not a.strip() or not b.strip():
                    continue
                tail_start = max(0, len(a) - _SPLIT_WINDOW)
                tail, head = a[tail_start:], b[:_SPLIT_WINDOW]
                if not _may_continue(shadow(tail).text, shadow(head).text):
                    continue
                for sep in ("", " "):
                    joins.append((g, i, tail_start, len(tail), len(sep)))
                    windows.append(tail + sep + head)
        out: list[list[list[Span]]] = [[[] for _ in texts] for texts in groups]
        for (g, i, tail_start, tail_len, sep_len), window, spans in zip(
            joins, windows, self.analyze(windows, entities) if windows else [], strict=True
        ):
            a_len = len(groups[g][i])
            for s in spans:
                if not (s.start < tail_len and s.end > tail_len + sep_len):  # not a part in each text
                    continue
                first = Span(s.entity_type, tail_start + s.start, tail_start + tail_len, s.score)
                second = Span(s.entity_type, 0, s.end - tail_len - sep_len, s.score)
                phone = s.entity_type == "PHONE_NUMBER"
                if phone and not _phone_join(window, s, tail_len + sep_len):
                    continue
                # a phone part counts as its text's own only where that text's phone has a whole phone's digits
                whole = _WHOLE_PHONE_DIGITS if phone else 0
                if _holds(spans_of[g][i], first, a_len, at_end=True, text=groups[g][i], digits=whole) or _holds(
                    spans_of[g][i + 1], second, 0, at_end=False, text=groups[g][i + 1], digits=whole
                ):
                    continue
                out[g][i].append(first)
                out[g][i + 1].append(second)
        return out

    def redact_texts(self, texts: Sequence[str], entities: Sequence[str] | None = None) -> list[str]:
        """Redact independent texts (each gets its own placeholder numbering)."""
        return [Pseudonymizer(self.cfg.operators).apply(t, s) for t, s in zip(texts, self.detect(texts, entities), strict=True)]

    def redact_groups(
        self,
        groups: Sequence[tuple[str, Sequence[str]]],
        *,
        progress: bool = False,
        desc: str = "pseudonymise",
        known: Sequence[Sequence[Sequence[Span]]] | None = None,
    ) -> list[list[str]]:
        """Redact ``(scope, texts)`` groups in one detection pass; the texts of a group share one
        pseudonymiser (same value -> same placeholder), a value detected in one of them is redacted in all
        of them (:func:`~llmops.pii.scope.spread_values`), and the vault files its values under ``scope``.
        ``known``: spans already known per group and text (metadata keys that name their value's type)."""
        texts = [t for _, group in groups for t in group]
        detected = self.detect(texts)
        spans = iter(detected)
        split = self.split_values([group for _, group in groups], detected)
        items: Iterable[tuple[int, tuple[str, Sequence[str]]]] = enumerate(groups)
        if progress:
            from tqdm import tqdm

            items = tqdm(items, total=len(groups), desc=desc, unit="item")
        out, pseudos = [], []
        for n, (scope, group) in items:
            found = [[*next(spans), *more] for more in split[n]]
            if known is not None:
                found = [[*f, *k] for f, k in zip(found, known[n], strict=True)]
            found = spread_values(group, found, self.cfg.entities)
            pseudo = self._pseudonymizer(scope)
            out.append([pseudo.apply(t, s) for t, s in zip(group, found, strict=True)])
            pseudos.append(pseudo)
        self._store(pseudos)
        return out

    def redact_conversations(self, conversations: Sequence[Conversation], *, progress: bool = False) -> list[Conversation]:
        """Turns and metadata of each conversation as one scope; metadata keys outside ``cfg.metadata_allow``
        dropped; a conversation id that looks like personal data hashed (:meth:`public_ids`); the channel one of
        ``cfg.channel_allow`` (:func:`public_channel`)."""
        ids = self.public_ids([c.conversation_id for c in conversations])
        groups, known, layouts = [], [], []
        for c, cid in zip(conversations, ids, strict=True):
            meta, hints, slots = metadata_texts(c.metadata)
            groups.append((f"conversation:{cid}", [*(t.text for t in c.turns), *meta]))
            asked = answer_spans([t.role for t in c.turns], [t.text for t in c.turns], self.cfg.entities)
            known.append([*asked, *whole_value_spans(meta, hints, self.cfg.entities)])
            layouts.append(slots)
        redacted = self.redact_groups(groups, progress=progress, known=known)
        out = []
        for c, cid, texts, slots in zip(conversations, ids, redacted, layouts, strict=True):
            turns = [t.model_copy(update={"text": x}) for t, x in zip(c.turns, texts, strict=False)]
            metadata, dropped = rebuild_metadata(c.metadata, slots, texts[len(c.turns) :], self.cfg.metadata_allow)
            self.metadata_dropped += dropped
            channel = public_channel(c.channel, self.cfg.channel_allow)
            self.channels_generalised += channel != c.channel
            out.append(c.model_copy(update={"conversation_id": cid, "channel": channel, "turns": turns, "metadata": metadata}))
        return out

    def redact_documents(self, documents: Sequence[Document]) -> list[Document]:
        texts = self.redact_texts([d.text for d in documents], self.cfg.document_entities)
        return [d.model_copy(update={"text": t}) for d, t in zip(documents, texts, strict=True)]

    def redact_feedback(self, events: Sequence[FeedbackEvent]) -> list[FeedbackEvent]:
        """Query, answer and correction of each event, scoped by its (public) generation id."""
        ids = self.public_ids([e.generation_id for e in events])
        groups = [(f"feedback:{g}", [e.query, e.answer, e.correction or ""]) for e, g in zip(events, ids, strict=True)]
        return [
            e.model_copy(update={"generation_id": g, "query": q, "answer": a, "correction": c or None})
            for e, g, (q, a, c) in zip(events, ids, self.redact_groups(groups), strict=True)
        ]

    def redact_corrections(self, generation_ids: Sequence[str], corrections: Sequence[str]) -> list[str]:
        """Free-text corrections that arrive after their generation, scoped like it (``feedback:<id>``)."""
        ids = self.public_ids(generation_ids)
        groups = [(f"feedback:{g}", [c]) for g, c in zip(ids, corrections, strict=True)]
        return [texts[0] for texts in self.redact_groups(groups)]

    def report(self) -> dict[str, Any]:
        """What this redactor did: texts, entities by type, metadata keys dropped, ids hashed."""
        return {
            **self.stats.as_dict(),
            "metadata_keys_dropped": self.metadata_dropped,
            "ids_hashed": self.ids_hashed,
            "channels_generalised": self.channels_generalised,
        }
