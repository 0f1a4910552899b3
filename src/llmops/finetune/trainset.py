"""Build chat-format fine-tuning data, each example in exactly the prompt the answer service serves.

Sources, all in-domain:

* feedback: a human correction (the gold answer) or a positively rated answer;
* conversations: each customer question with the agent's reply (:func:`~llmops.finetune.examples.conversation_pairs`),
  kept only when the knowledge base supports the reply (share of its content words found in the
  retrieved context >= ``trainset.min_support``): support chats about another business are dropped;
* knowledge-base FAQ pairs (``trainset.kb_pairs``): a page's question heading and its paragraph.

Every example's user message is :func:`llmops.llm.prompts.rag_messages` over the serving retriever's top
``serve.top_k`` passages cut at ``serve.context_chars`` -- what the model will be asked at serving time.
The answer must fit ``finetune.max_seq_len`` with its end-of-turn token (cut at a sentence or dropped);
template placeholders broken by redaction and broken correction spans are dropped. Eval questions never
enter training: their dialogues (``<dialogue id>_<turn>`` ids), exact and near copies of their queries.
Exact and near duplicates (:mod:`llmops.text`) are removed. Every drop is counted by reason.
The train/validation split is by group (conversation, generation, page section), so one conversation
never lands on both sides.

Shares hold on the files written, after every filter: one API key's feedback is at most
``feedback.max_share_per_key`` of train (and of validation), all feedback together at most
``trainset.max_feedback_share``; the excess is dropped (``over_key_share`` / ``over_feedback_share``).
Sources are interleaved in proportion to their sizes (:func:`interleave_sources`), so the first
training steps (and a ``max_examples`` cut) see each source at its share of the whole, not more.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from llmops.config import BaseParams, FeedbackParams, ServeParams, TrainsetParams
from llmops.finetune.examples import CountTokens, broken_placeholder, broken_span, conversation_pairs, fit_answer, kb_pairs
from llmops.records import ChatMessage, Conversation, Document, EvalQuestion, FeedbackEvent, TrainingExample

_RETRIEVAL_BATCH = 512  # candidates whose serving context is retrieved together
FEEDBACK_SOURCES = ("correction", "rated_positive")


class Retriever(Protocol):
    def search(self, queries: Sequence[str], k: int) -> list[list[dict[str, Any]]]: ...


@dataclass
class ServingPrompt:
    """How the answer service builds its prompt: the serving retriever, ``serve.top_k``, ``serve.context_chars``."""

    retriever: Retriever | None
    cfg: ServeParams = field(default_factory=ServeParams)


@dataclass
class AnswerFit:
    """Tokens of a chat example (template included) and the window it must fit.

    ``cache`` (a :class:`llmops.data.incremental.RecordCache`) and ``fp`` (what the token count depends on:
    the tokenizer): the outcome of each (prompt, answer) is reused across runs, so after an append only new
    examples are tokenised (and ``count_tokens`` may load its tokenizer lazily, on the first miss)."""

    count_tokens: CountTokens
    max_seq_len: int
    cache: Any = None
    fp: str = ""
    fitted: int = 0  # (prompt, answer) pairs tokenised by this run
    reused: int = 0  # ... whose outcome came from the cache

    def fit_many(self, items: Sequence[tuple[list[dict[str, str]], str]]) -> list[tuple[str | None, str]]:
        """:func:`~llmops.finetune.examples.fit_answer` of each ``(prompt messages, answer)``."""
        if self.cache is None:
            self.fitted += len(items)
            return [fit_answer(m, a, self.count_tokens, self.max_seq_len) for m, a in items]
        import json

        from llmops.data.incremental import record_key

        keys = [record_key(self.fp, json.dumps([self.max_seq_len, m, a], sort_keys=True)) for m, a in items]
        known = self.cache.get_many(keys, "fit")
        fresh: dict[str, str] = {}
        for key, (m, a) in zip(keys, items, strict=True):
            if key not in known and key not in fresh:
                fresh[key] = json.dumps(fit_answer(m, a, self.count_tokens, self.max_seq_len))
        if fresh:
            self.cache.put_many(fresh.items(), "fit")
            known.update(fresh)
        self.fitted += len(fresh)
        self.reused += len(items) - len(fresh)
        return [(v[0], v[1]) for v in (json.loads(known[key]) for key in keys)]


@dataclass
class SupportVerdicts:
    """Whether the retrieved context supports a candidate's answer (``trainset.min_support``), kept across runs
    in ``cache`` (a :class:`llmops.data.incremental.RecordCache`) per (question, answer). ``fp`` covers what a
    verdict depends on: the index and retrieval params, ``serve.context_chars``, the system prompt, the
    threshold and the code. An answer known to be unsupported costs neither a context lookup nor a word count
    on a later run. ``judged``/``reused`` count candidates."""

    cache: Any
    fp: str
    judged: int = 0
    reused: int = 0

    def _keys(self, batch: Sequence[_Candidate]) -> list[str]:
        from llmops.data.incremental import record_key

        return [record_key(self.fp, f"{c.question}\x1e{c.answer}") for c in batch]

    def known(self, batch: Sequence[_Candidate]) -> dict[int, bool]:
        keys = self._keys(batch)
        found = self.cache.get_many(keys, "support")
        out = {i: found[k] == "1" for i, k in enumerate(keys) if k in found}
        self.reused += len(out)
        return out

    def store(self, batch: Sequence[_Candidate], fresh: dict[int, bool]) -> None:
        keys = self._keys(batch)
        self.cache.put_many(((keys[i], "1" if ok else "0") for i, ok in fresh.items()), "support")
        self.judged += len(fresh)


@dataclass
class _Candidate:
    question: str
    answer: str
    source: str
    group_id: str
    created_at: Any = None
    key: str | None = None  # the API key whose feedback made this example (None: no key controls it)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _unit(key: str, seed: int) -> float:
    """A stable pseudo-random number in [0, 1) for ``key`` (split assignment, sampling order)."""
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:12], 16) / 16**12


def dialogue_of(question_id: str) -> str:
    """doc2dial question ids are ``<dialogue id>_<turn>``; other ids are their own dialogue."""
    head, sep, turn = question_id.rpartition("_")
    return head if sep and turn.isdigit() else question_id


@dataclass
class TrainsetResult:
    train: list[TrainingExample] = field(default_factory=list)
    validation: list[TrainingExample] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    trimmed: int = 0
    validation_capped: int = 0
    # The API key behind each example (None: conversations, knowledge base, operator-imported feedback),
    # parallel to ``train`` / ``validation``. Names stay in memory: the files carry no key names.
    train_keys: list[str | None] = field(default_factory=list)
    validation_keys: list[str | None] = field(default_factory=list)
    # Feedback examples (their generation ids) the key and feedback shares dropped: a preference pair whose
    # chosen side is one of them is dropped too (:func:`pairs_within_shares`).
    share_dropped: set[str] = field(default_factory=set)

    def provenance(self) -> list[dict[str, Any]]:
        """One row per example, in file order: split, source and the id it came from."""
        return [
            {
                "split": split,
                "source": e.source,
                "group_id": e.group_id,
                "created_at": e.created_at.isoformat() if e.created_at else None,
                "example_id": example_id(e),
            }
            for split, examples in (("train", self.train), ("validation", self.validation))
            for e in examples
        ]

    def stats(self) -> dict[str, Any]:
        by_source = Counter(e.source for e in self.train + self.validation)
        return {
            "train": len(self.train),
            "validation": len(self.validation),
            "by_source": dict(sorted(by_source.items())),
            "answers_trimmed": self.trimmed,
            "validation_capped": self.validation_capped,  # validation-share examples over trainset.max_validation (trained on)
            "skipped": dict(sorted(self.skipped.items())),
            "keys": len({k for k in self.train_keys + self.validation_keys if k is not None}),
            "max_key_share_train": round(max_key_share(self.train_keys), 6),
            "feedback_share_train": round(
                sum(e.source in FEEDBACK_SOURCES for e in self.train) / len(self.train) if self.train else 0.0, 6
            ),
        }


def example_id(ex: TrainingExample) -> str:
    """A content id of an example: its source, group and answer (not the retrieved context, which follows the
    index). The retrain policy counts as new the training examples a model's training set did not hold.
    Written in letters (:func:`llmops.data.incremental.letters`): digits could read as a number to the leak scan."""
    from llmops.data.incremental import letters

    body = f"{ex.source}\x1e{ex.group_id}\x1e{_norm(ex.messages[-1].content)}".encode()
    return letters(hashlib.blake2b(body, digest_size=8).hexdigest())


def max_key_share(keys: Sequence[str | None]) -> float:
    """The largest share of ``keys`` (one per example) that a single API key holds (0 without keys)."""
    counts = Counter(k for k in keys if k is not None)
    return max(counts.values()) / len(keys) if counts else 0.0


class _Screen:
    """The per-candidate filters of :func:`build_trainset` (eval overlap, broken placeholders, answer length and
    letters): a skip reason, or None for a candidate that goes on. ``digest``: what a verdict depends on besides
    the candidate and ``trainset`` params (the eval set, under its public ids too)."""

    def __init__(self, eval_queries: set[str], eval_dialogues: set[str], cfg: TrainsetParams) -> None:
        from llmops.text import shingles

        self.eval_queries, self.eval_dialogues, self.cfg = eval_queries, eval_dialogues, cfg
        self.eval_shingles = sorted((shingles(q) for q in eval_queries), key=len)  # by size: see _near_eval
        self.eval_sizes = [len(e) for e in self.eval_shingles]
        body = json.dumps([sorted(eval_queries), sorted(eval_dialogues)])
        self.digest = hashlib.sha256(body.encode()).hexdigest()[:32]

    def __call__(self, c: _Candidate) -> str | None:
        cfg = self.cfg
        if c.group_id in self.eval_dialogues or _norm(c.question) in self.eval_queries:
            return "eval_overlap"
        if _near_eval(c.question, self.eval_shingles, cfg.near_dup_threshold, self.eval_sizes):
            return "eval_overlap"
        if broken_placeholder(c.answer):
            return "broken_placeholder"
        if len(c.answer) < cfg.min_answer_chars:
            return "answer_too_short"
        if len(c.answer) > cfg.max_answer_chars:
            return "answer_too_long"
        if sum(map(str.isalpha, c.answer)) < cfg.min_alpha_share * len(c.answer.replace(" ", "")):
            return "answer_not_text"
        return None


def _iso(ts: Any) -> str | None:
    return ts.isoformat() if ts else None


def _conversation_candidates(conv: Conversation, cfg: TrainsetParams, skipped: Counter[str]) -> list[_Candidate]:
    pairs = conversation_pairs(conv, cfg.max_pairs_per_conversation)
    if not pairs:
        skipped["no_agent_answer"] += 1
    return [_Candidate(q, a, "conversation", conv.conversation_id, conv.created_at) for q, a in pairs]


def _screened(candidates: Iterable[_Candidate], screen: _Screen, skipped: Counter[str]) -> Iterator[_Candidate]:
    for c in candidates:
        reason = screen(c)
        if reason is None:
            yield c
        else:
            skipped[reason] += 1


class ConversationPartitions:
    """The conversations of a partitioned directory (``llmops.data.incremental``) as :func:`build_trainset`
    screens them, with each partition's outcome reused: the candidates that passed the per-candidate filters
    and the skip counts of the others are kept in ``cache`` under the partition file's digest, ``fp`` (params
    and code) and the screen's digest (the eval set). A partition unchanged since the run that stored them is
    neither read nor parsed: a nightly parses what arrived, and the archive costs a stat per partition (its
    digest is remembered by size, mtime and inode: :meth:`llmops.data.incremental.RecordCache.digest`).

    ``seen`` counts the conversations (processed/reused); :meth:`commit` stores this run's entries, after the
    outputs are written (a failed run stores nothing). An entry no run uses any more (its partition changed or
    went) is swept with the cache (erasure). ``parsed``/``reused`` count partitions."""

    def __init__(self, directory: Path, seen: Any, cache: Any, fp: str) -> None:
        self.directory, self.seen, self.cache, self.fp = Path(directory), seen, cache, fp
        self.parsed = 0
        self.reused = 0
        self._pending: list[tuple[str, str]] = []  # (key stored under, key once committed)

    def screened(self, screen: _Screen, cfg: TrainsetParams, skipped: Counter[str]) -> Iterator[_Candidate]:
        from datetime import datetime

        from llmops.data.incremental import partitions, record_key

        used: list[str] = []
        for part in partitions(self.directory):
            key = record_key(f"{self.fp}:{screen.digest}", self.cache.digest(part))  # re-read only if its stat changed
            hit = self.cache.peek(key)
            if hit is not None:
                used.append(key)
                entry = json.loads(hit)
                self.seen.reuse(part, entry["records"])
                skipped.update(entry["skipped"])
                self.reused += 1
                for q, a, group_id, created_at in entry["candidates"]:
                    yield _Candidate(q, a, "conversation", group_id, datetime.fromisoformat(created_at) if created_at else None)
                continue
            records = self.seen.processed + self.seen.reused
            own: Counter[str] = Counter()
            kept: list[_Candidate] = []
            for conv in self.seen.iter_partition(part, Conversation):
                for c in _screened(_conversation_candidates(conv, cfg, own), screen, own):
                    kept.append(c)
                    yield c
            body = {
                "records": self.seen.processed + self.seen.reused - records,
                "skipped": dict(own),
                "candidates": [[c.question, c.answer, c.group_id, _iso(c.created_at)] for c in kept],
            }
            skipped.update(own)
            pending = record_key(f"{self.fp}:pending", key)
            self.cache.put_many([(pending, json.dumps(body))], "screened")
            self._pending.append((pending, key))
            self.parsed += 1
        self.cache.touch(used, "screened")  # one write for the entries reused

    def commit(self) -> None:
        """Store this run's partition entries (their conversations' keys are stored by ``seen.commit``)."""
        self.cache.rename(self._pending)
        self._pending = []


def _candidates(
    conversations: Iterable[Conversation] | ConversationPartitions,
    feedback: Sequence[FeedbackEvent],
    documents: Sequence[Document],
    cfg: TrainsetParams,
    skipped: Counter[str],
    screen: _Screen,
) -> Iterator[_Candidate]:
    """Screened candidates in a stable order (feedback, conversations as streamed, FAQ pairs), one at a time."""

    def feedback_candidates() -> Iterator[_Candidate]:
        for ev in feedback:
            if ev.correction:
                if broken_span(ev.correction):
                    skipped["broken_correction"] += 1
                    continue
                yield _Candidate(ev.query, ev.correction, "correction", ev.generation_id, ev.ts, ev.feedback_key_name)
            elif ev.rating == 1:
                yield _Candidate(ev.query, ev.answer, "rated_positive", ev.generation_id, ev.ts, ev.feedback_key_name)
            else:
                skipped["feedback_not_positive"] += 1

    if cfg.include_feedback:
        yield from _screened(feedback_candidates(), screen, skipped)
    if isinstance(conversations, ConversationPartitions):
        yield from conversations.screened(screen, cfg, skipped)
    else:
        for conv in conversations:
            yield from _screened(_conversation_candidates(conv, cfg, skipped), screen, skipped)
    if cfg.kb_pairs:
        kb = (_Candidate(q, a, "kb_pair", f"{doc.doc_id}#{i}", doc.updated_at) for doc in documents for i, q, a in kb_pairs(doc))
        yield from _screened(kb, screen, skipped)


def build_trainset(
    conversations: Iterable[Conversation] | ConversationPartitions,
    feedback: Sequence[FeedbackEvent],
    eval_questions: Sequence[EvalQuestion],
    cfg: TrainsetParams,
    base: BaseParams,
    *,
    documents: Sequence[Document] = (),
    prompt: ServingPrompt | None = None,
    fit: AnswerFit | None = None,
    feedback_cfg: FeedbackParams | None = None,
    public_ids: Callable[[Sequence[str]], list[str]] | None = None,
    minhash: MinHashBands | None = None,
    verdicts: SupportVerdicts | None = None,
    near_state: NearDuplicateState | None = None,
) -> TrainsetResult:
    """Turn redacted data into train/validation examples in the served prompt format (see module docstring).

    Without ``prompt.retriever`` the prompt is the bare question (no context, no support check); without
    ``fit`` answers are not checked against a token window. ``feedback_cfg``: ``max_share_per_key`` (its
    default when None). ``public_ids``: how the redaction boundary rewrites ids (``redact.hash_ids``,
    :meth:`llmops.pii.redact.Redactor.public_ids`), so eval dialogues are excluded under their hashed ids too.
    ``minhash``: the near-duplicate band keys (:class:`MinHashBands`, with a cache across runs); default: computed.
    ``conversations`` as :class:`ConversationPartitions`: each unchanged partition's screened candidates reused.
    ``verdicts``: the support verdicts kept across runs (:class:`SupportVerdicts`). ``near_state``: the
    near-duplicate walk's decisions kept across runs (:class:`NearDuplicateState`): a night walks what changed.
    """
    from llmops.feedback.curate import support
    from llmops.llm.prompts import rag_messages

    result = TrainsetResult()
    prompt = prompt or ServingPrompt(None)
    eval_queries = {_norm(q.query) for q in eval_questions}
    eval_dialogues = {dialogue_of(q.id) for q in eval_questions}
    if public_ids is not None and eval_dialogues:  # conversation ids may be hashed at the boundary
        eval_dialogues |= set(public_ids(sorted(eval_dialogues)))
    screen = _Screen(eval_queries, eval_dialogues, cfg)
    # Memory follows the output, not the archive: candidates and built examples are spilled to a temporary
    # SQLite file; what stays in memory per candidate is an 8-byte exact-duplicate key, and per built example
    # a compact record for the split and the share caps (:class:`_Meta`). Near duplicates are found with the
    # same MinHash bands as :func:`llmops.text.near_duplicates`, their buckets on disk too.
    spill = _Spill()
    try:
        seen: set[int] = set()
        for c in _candidates(conversations, feedback, documents, cfg, result.skipped, screen):
            digest = hashlib.sha256(f"{_norm(c.question)}\x1e{_norm(c.answer)}".encode()).digest()
            key = int.from_bytes(digest[:8], "big")
            if key in seen:
                result.skipped["duplicate"] += 1
                continue
            seen.add(key)
            spill.add_candidate(c)
        del seen
        if cfg.near_dup_threshold > 0:
            bands = minhash or MinHashBands(base.seed)
            dropped = spill.drop_near_duplicates(cfg.near_dup_threshold, bands, state=near_state)
            if dropped:
                result.skipped["near_duplicate"] += dropped

        metas: list[_Meta] = []
        # Contexts are retrieved for a batch of candidates at a time: the retrieved passages of every question
        # are never held at once (memory follows the batch, not the archive).
        for batch in spill.candidates(_RETRIEVAL_BATCH):
            contexts: dict[str, list[str]] = {}
            # Known support verdicts (an earlier run's): an unsupported candidate needs no context at all.
            known = verdicts.known(batch) if verdicts is not None and prompt.retriever is not None else {}
            fresh: dict[int, bool] = {}
            if prompt.retriever is not None:
                questions = list(dict.fromkeys(c.question for i, c in enumerate(batch) if known.get(i) is not False))
                hits = prompt.retriever.search(questions, k=prompt.cfg.top_k) if questions else []
                contexts = {q: [h["text"] for h in hs] for q, hs in zip(questions, hits, strict=True)}
            supported: list[tuple[_Candidate, list[dict[str, str]]]] = []
            for i, c in enumerate(batch):
                if prompt.retriever is not None:
                    if known.get(i) is False:
                        result.skipped["unsupported_by_context"] += 1
                        continue
                    messages = rag_messages(c.question, contexts[c.question], base.system_prompt, prompt.cfg.context_chars)
                    if i not in known:
                        fresh[i] = support(c.answer, messages[-1]["content"]) >= cfg.min_support
                    if not known.get(i, fresh.get(i)):
                        result.skipped["unsupported_by_context"] += 1
                        continue
                else:
                    messages = [{"role": "system", "content": base.system_prompt}, {"role": "user", "content": c.question}]
                supported.append((c, messages))
            if verdicts is not None and fresh:
                verdicts.store(batch, fresh)
            fits = fit.fit_many([(m, c.answer) for c, m in supported]) if fit is not None else []
            for i, (c, messages) in enumerate(supported):
                answer = c.answer
                if fit is not None:
                    fitted, outcome = fits[i]
                    if fitted is None:
                        result.skipped[outcome] += 1
                        continue
                    if len(fitted) < cfg.min_answer_chars:
                        result.skipped["answer_too_short_after_trim"] += 1
                        continue
                    result.trimmed += outcome == "trimmed"
                    answer = fitted
                chat = [ChatMessage.model_validate(m) for m in messages] + [ChatMessage(role="assistant", content=answer)]
                example = TrainingExample(messages=chat, source=c.source, group_id=c.group_id, created_at=c.created_at)
                metas.append(spill.add_example(example, c.key, base.seed))

        train: list[tuple[Any, str | None]] = []
        validation: list[tuple[Any, str | None]] = []
        for m in metas:
            (validation if _unit(m.group_id, base.seed) < cfg.validation_share else train).append((m, m.key))
        del metas
        if cfg.max_validation and len(validation) > cfg.max_validation:
            validation, moved = _cap_validation(validation, cfg.max_validation, base.seed)
            train += moved
            result.validation_capped = len(moved)
        key_share = (feedback_cfg or FeedbackParams()).max_share_per_key
        # Capped before the max_examples cut (so the cut is filled with what may stay) and again on what the
        # cut leaves (its rounding may tip a key over): the shares hold on the files as written.
        caps = (key_share, cfg.max_feedback_share, base.seed, result.skipped, result.share_dropped)
        train = _interleave(_cap_shares(train, *caps), base.seed)
        if len(train) > cfg.max_examples:
            result.skipped["over_max_examples"] += len(train) - cfg.max_examples
            train = train[: cfg.max_examples]
        train = _cap_shares(train, *caps)
        validation = _interleave(_cap_shares(validation, *caps), base.seed)
        result.train, result.train_keys = spill.examples([m for m, _ in train]), [k for _, k in train]
        result.validation, result.validation_keys = spill.examples([m for m, _ in validation]), [k for _, k in validation]
    finally:
        spill.close()
    return result


class _Meta:
    """What the split and the share caps need of a built example (its full text waits in the spill)."""

    __slots__ = ("group_id", "idx", "key", "order", "source")

    def __init__(self, idx: int, group_id: str, source: str, key: str | None, order: float) -> None:
        self.idx, self.group_id, self.source, self.key, self.order = idx, group_id, source, key, order


class MinHashBands:
    """The MinHash band keys of a text, as :func:`llmops.text.near_duplicates` computes its buckets (same
    coefficients for ``seed``, same bands and rows; each band's rows hashed to one signed 64-bit key).

    The signature is the costly part of near-duplicate removal (``bands * rows`` modular products per
    shingle; :func:`llmops.text.minhash_signatures` computes them for a batch of texts at once in numpy) and
    depends on the text alone: with ``cache`` (a
    :class:`llmops.data.incremental.RecordCache`) the keys of texts seen by an earlier run are reused, so a
    nightly computes them only for new candidates. ``computed``/``reused`` count texts. The verdicts of the
    pairs compared (texts sharing a band: is their Jaccard over the threshold?) are kept too, by the pair's
    text ids, so a night compares only pairs it has not seen (:meth:`near_verdicts`, :meth:`remember`).
    ``code``: a digest of the shingling code (``llmops.text``), part of every key."""

    def __init__(self, seed: int, cache: Any = None, bands: int = 16, rows: int = 4, code: str = "") -> None:
        from llmops.text import minhash_coefficients

        self.bands, self.rows = bands, rows
        self.coeffs = minhash_coefficients(bands * rows, seed)
        self.cache = cache
        self.fp = hashlib.sha256(repr((seed, bands, rows, "minhash-v1", code)).encode()).hexdigest()[:32]
        self.computed = 0
        self.reused = 0
        self.pairs_compared = 0  # near-duplicate candidate pairs whose Jaccard this run computed
        self.pairs_reused = 0  # ... whose verdict came from the cache

    def _keys(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's band keys: its signature (:func:`llmops.text.minhash_signatures`, all texts at once),
        each band's rows hashed to a signed 64-bit key."""
        from llmops.text import minhash_signatures, shingles

        out = []
        for sig in minhash_signatures([shingles(t) for t in texts], self.coeffs):
            keys = []
            for band in range(self.bands):
                rows = ",".join(map(str, sig[band * self.rows : (band + 1) * self.rows]))
                digest = hashlib.blake2b(f"{band}:{rows}".encode(), digest_size=8).digest()
                keys.append(int.from_bytes(digest, "big", signed=True))
            out.append(keys)
        return out

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        if self.cache is None:
            self.computed += len(texts)
            return self._keys(texts)
        import json

        from llmops.data.incremental import record_key

        ids = [record_key(self.fp, t) for t in texts]
        known = self.cache.get_many(ids, "minhash")
        missing = {i: t for i, t in zip(ids, texts, strict=True) if i not in known}
        fresh = {i: json.dumps(keys) for i, keys in zip(missing, self._keys(list(missing.values())), strict=True)}
        if fresh:
            self.cache.put_many(fresh.items(), "minhash")
            known.update(fresh)
        self.computed += len(fresh)
        self.reused += len(texts) - len(fresh)
        return [json.loads(known[i]) for i in ids]

    def near_verdicts(self, pairs: Iterable[tuple[str, str]], threshold: float) -> dict[tuple[str, str], bool]:
        """Known verdicts "Jaccard >= ``threshold``" of pairs of texts (by :func:`text_id`), from the cache."""
        if self.cache is None:
            return {}
        from llmops.data.incremental import record_key

        keys = {record_key(self.fp, f"near\x1f{threshold!r}\x1f{a}\x1f{b}"): (a, b) for a, b in pairs}
        found = self.cache.get_many(list(keys), "near")
        self.pairs_reused += len(found)
        return {keys[k]: v == "1" for k, v in found.items()}

    def remember(self, verdicts: dict[tuple[str, str], bool], threshold: float) -> None:
        """Keep verdicts just computed (texts by :func:`text_id`; no text is stored)."""
        self.pairs_compared += len(verdicts)
        if self.cache is None or not verdicts:
            return
        from llmops.data.incremental import record_key

        rows = (
            (record_key(self.fp, f"near\x1f{threshold!r}\x1f{a}\x1f{b}"), "1" if v else "0") for (a, b), v in verdicts.items()
        )
        self.cache.put_many(rows, "near")


def text_id(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


# Part of the near-duplicate state's fingerprint: bump it when the walk's decisions or the state's layout change
# (not the file's digest: an unrelated edit of this module would throw away every night's resumed walk).
WALK_VERSION = "near-walk-v1"


@dataclass
class NearDuplicateState:
    """Where the training set's near-duplicate walk keeps its decisions across runs (an SQLite file: per
    position the text id of each non-feedback candidate and whether it was kept, the band keys of the kept
    ones, the feedback texts kept), so a night walks what changed, not the archive (:meth:`_Spill._resume`).
    ``fp`` covers what a decision depends on besides the texts and their order: the MinHash bands (with the
    shingling code), the threshold and :data:`WALK_VERSION`; another ``fp`` starts over. ``resumed``/``walked``:
    this run's candidates whose decision came from the state / were walked (feedback not counted)."""

    path: Path
    fp: str
    resumed: int = 0
    walked: int = 0


class _Spill:
    """A temporary SQLite file holding the kept candidates, the built examples and the near-duplicate index
    (MinHash band buckets of the kept texts), so memory does not grow with the archive."""

    def __init__(self) -> None:
        import sqlite3
        import tempfile

        self.dir = tempfile.TemporaryDirectory(prefix="trainset-")
        # (a concurrent run may hold the near-duplicate state briefly: wait, as the record cache does)
        self.db = sqlite3.connect(Path(self.dir.name) / "spill.sqlite", timeout=300)
        self.db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE cand (idx INTEGER PRIMARY KEY, data TEXT, tid TEXT, dropped INTEGER DEFAULT 0);"
            "CREATE TABLE ex (idx INTEGER PRIMARY KEY, data TEXT);"
            "CREATE TABLE band (key INTEGER, idx INTEGER, tid TEXT); CREATE INDEX band_key ON band (key);"
        )
        self.n_cand = 0
        self.n_feedback = 0  # the leading feedback candidates (they come first: :func:`_candidates`)
        self._gen: int | None = None  # the near-duplicate state's generation when :meth:`_resume` read it
        self._rows: list[tuple[int, str, str]] = []  # candidates not yet written (one batch)
        self.n_ex = 0

    def add_candidate(self, c: _Candidate) -> None:
        import json

        row = [c.question, c.answer, c.source, c.group_id, c.created_at.isoformat() if c.created_at else None, c.key]
        self._rows.append((self.n_cand, json.dumps(row), text_id(f"{c.question}\n{c.answer}")))
        if c.source in FEEDBACK_SOURCES and self.n_feedback == self.n_cand:
            self.n_feedback += 1
        self.n_cand += 1
        if len(self._rows) >= 1000:
            self.flush()

    def flush(self) -> None:
        """Write the candidates added since the last flush (before anything reads them)."""
        self.db.executemany("INSERT INTO cand (idx, data, tid) VALUES (?, ?, ?)", self._rows)
        self._rows = []

    def _text(self, idx: int) -> str:
        import json

        (data,) = self.db.execute("SELECT data FROM cand WHERE idx = ?", (idx,)).fetchone()
        q, a = json.loads(data)[:2]
        return f"{q}\n{a}"

    def drop_near_duplicates(
        self, threshold: float, bands: MinHashBands, batch: int = 1000, state: NearDuplicateState | None = None
    ) -> int:
        """Mark each candidate that nearly duplicates an earlier kept one (Jaccard of word 3-shingles >=
        ``threshold`` among the texts sharing a MinHash band): the first copy is kept, as in
        :func:`llmops.text.near_duplicates`. Returns how many were dropped. The verdict of each pair compared
        comes from ``bands``' cache when an earlier run compared the same two texts.

        With ``state`` (:class:`NearDuplicateState`) the walk resumes where the last run's walk over the same
        candidates diverges: the feedback candidates (first in the order) are walked every time, then the
        decisions of the longest unchanged prefix of the others are taken from the state, and only the rest is
        walked (see :meth:`_resume` for when the prefix is shortened). Same result as a whole walk."""
        self.flush()
        dropped = self._walk(0, self.n_feedback, threshold, bands, batch)
        start = self.n_feedback
        if state is not None:
            resumed, known_dropped = self._resume(state, threshold, bands)
            start += resumed
            dropped += known_dropped
        dropped += self._walk(start, self.n_cand, threshold, bands, batch)
        if state is not None:
            self._save(state, start - self.n_feedback)
            state.resumed, state.walked = start - self.n_feedback, self.n_cand - start
        return dropped

    def _walk(self, lo: int, hi: int, threshold: float, bands: MinHashBands, batch: int) -> int:
        """The greedy walk over candidates ``lo`` to ``hi`` (exclusive), against the kept texts in the index."""
        from collections import OrderedDict

        from llmops.text import jaccard, shingles

        recent: OrderedDict[int, set[int]] = OrderedDict()  # shingles of the last kept texts compared (bounded)

        def shingles_of(j: int, text: str | None) -> set[int]:
            if j in recent:
                recent.move_to_end(j)
                return recent[j]
            out = recent[j] = shingles(text if text is not None else self._text(j))
            if len(recent) > 4096:
                recent.popitem(last=False)
            return out

        dropped = 0
        for start in range(lo, hi, batch):
            rows = self.db.execute(
                "SELECT idx, data, tid FROM cand WHERE idx >= ? AND idx < ? ORDER BY idx", (start, min(start + batch, hi))
            ).fetchall()
            items = [(idx, "\n".join(json.loads(data)[:2])) for idx, data, _ in rows]
            texts = dict(items)
            ids = {idx: tid for idx, _, tid in rows}
            all_keys = bands([t for _, t in items])
            # The kept texts of earlier batches that share a band with this batch, in one pass over the index;
            # this batch's kept texts join the buckets as they are kept (memory: one batch's buckets).
            buckets: dict[int, list[int]] = {}
            flat = list(dict.fromkeys(k for keys in all_keys for k in keys))
            for i in range(0, len(flat), 500):
                chunk = flat[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for key, j, tid in self.db.execute(f"SELECT key, idx, tid FROM band WHERE key IN ({marks})", chunk):
                    buckets.setdefault(key, []).append(j)
                    ids[j] = tid
            # Every pair this batch may compare (earlier kept texts, and any earlier text of the batch): their
            # known verdicts in one lookup.
            pairs: set[tuple[str, str]] = set()
            earlier: dict[int, list[int]] = {}
            for (idx, _), keys in zip(items, all_keys, strict=True):
                others: set[int] = set()
                for k in keys:
                    others.update(buckets.get(k, ()))
                    others.update(earlier.get(k, ()))
                    earlier.setdefault(k, []).append(idx)
                pairs.update((ids[idx], ids[j]) for j in others)
            known = bands.near_verdicts(pairs, threshold)
            del pairs, earlier
            fresh: dict[tuple[str, str], bool] = {}
            kept_rows: list[tuple[int, int, str]] = []
            dropped_idx: list[tuple[int]] = []
            for (idx, text), keys in zip(items, all_keys, strict=True):
                near = sorted({j for k in keys for j in buckets.get(k, ())})
                s: set[int] | None = None
                is_near = False
                for j in near:
                    pair = (ids[idx], ids[j])
                    verdict = known.get(pair, fresh.get(pair))
                    if verdict is None:
                        s = s if s is not None else shingles(text)
                        verdict = fresh[pair] = jaccard(s, shingles_of(j, texts.get(j))) >= threshold
                    if verdict:
                        is_near = True
                        break
                if is_near:
                    dropped_idx.append((idx,))
                else:
                    for k in keys:
                        buckets.setdefault(k, []).append(idx)
                    kept_rows += [(k, idx, ids[idx]) for k in keys]
            bands.remember(fresh, threshold)
            self.db.executemany("UPDATE cand SET dropped = 1 WHERE idx = ?", dropped_idx)
            self.db.executemany("INSERT INTO band VALUES (?, ?, ?)", kept_rows)
            dropped += len(dropped_idx)
        return dropped

    _WALK_TABLES = (
        "CREATE TABLE IF NOT EXISTS walk.meta (fp TEXT, gen INTEGER)",
        "CREATE TABLE IF NOT EXISTS walk.fkept (tid TEXT PRIMARY KEY)",
        "CREATE TABLE IF NOT EXISTS walk.seq (pos INTEGER PRIMARY KEY, tid TEXT, kept INTEGER)",
        "CREATE TABLE IF NOT EXISTS walk.band (pos INTEGER, key INTEGER)",
        "CREATE INDEX IF NOT EXISTS walk.band_pos ON band (pos)",
        "CREATE INDEX IF NOT EXISTS walk.band_key ON band (key)",
    )

    def _stored(self) -> tuple[str, int] | None:
        """The state's fingerprint and generation (None: empty, or another layout)."""
        import sqlite3

        try:
            row = self.db.execute("SELECT fp, gen FROM walk.meta").fetchone()
        except sqlite3.OperationalError as err:  # a new file, or an older layout; anything else (locked) is raised
            if "no such" in str(err):
                return None
            raise
        return (str(row[0]), int(row[1])) if row else None

    def _resume(self, state: NearDuplicateState, threshold: float, bands: MinHashBands) -> tuple[int, int]:
        """Take the decisions of the longest prefix of the non-feedback candidates that the last walk (``state``)
        saw in the same order; returns its length and how many of it were dropped (marked here).

        A candidate's decision depends only on the kept texts before it. Before the prefix come the feedback
        candidates, walked anew: the stored decisions hold if every feedback text kept last time is kept again
        (one no longer kept may have caused drops that now should not happen: no resume) and no feedback text
        kept now but not then is near a text the prefix kept (the prefix is cut before the first such text).
        Its kept texts' band keys join the index, so the walk after it compares against them as a whole walk
        would. The state is a separate SQLite file attached to the spill (band keys and text ids, no text),
        read in one transaction; its generation is remembered for :meth:`_save`."""
        import os

        from llmops.text import jaccard, shingles

        db, nf = self.db, self.n_feedback
        state.path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(state.path, os.O_CREAT | os.O_WRONLY, 0o600))  # owner-only before SQLite writes to it
        db.commit()  # ATTACH needs no open transaction
        db.execute("ATTACH DATABASE ? AS walk", (str(state.path),))
        db.execute("PRAGMA walk.secure_delete = ON")  # what a run rewrites (an erased conversation's keys) is overwritten
        self._gen = None
        db.execute("BEGIN")  # one snapshot: a concurrent run's save lands before or after, not in between
        try:
            stored_meta = self._stored()
            if stored_meta is None or stored_meta[0] != state.fp:
                return 0, 0
            self._gen = stored_meta[1]
            stored = {tid for (tid,) in db.execute("SELECT tid FROM walk.fkept")}
            kept_feedback = dict(db.execute("SELECT tid, idx FROM main.band WHERE idx < ? GROUP BY tid", (nf,)).fetchall())
            if stored - set(kept_feedback):
                return 0, 0
            first_change = (
                "SELECT MIN(s.pos) FROM walk.seq s LEFT JOIN main.cand c ON c.idx = s.pos + ? "
                "WHERE c.tid IS NULL OR c.tid != s.tid"
            )
            (mismatch,) = db.execute(first_change, (nf,)).fetchone()
            (count,) = db.execute("SELECT COUNT(*) FROM walk.seq").fetchone()
            prefix = min(count if mismatch is None else mismatch, self.n_cand - nf)
            added = {idx: tid for tid, idx in kept_feedback.items() if tid not in stored}
            if added and prefix:
                near: dict[tuple[str, str], tuple[int, int]] = {}  # (prefix text id, feedback text id) -> (pos, idx)
                keys = db.execute("SELECT key, idx FROM main.band WHERE idx < ?", (nf,)).fetchall()
                for key, fidx in keys:
                    if fidx not in added:
                        continue
                    for pos, ctid in db.execute(
                        "SELECT b.pos, s.tid FROM walk.band b JOIN walk.seq s ON s.pos = b.pos WHERE b.key = ? AND b.pos < ?",
                        (key, prefix),
                    ):
                        near[(ctid, added[fidx])] = (pos, fidx)
                known = bands.near_verdicts(near, threshold)
                fresh = {
                    pair: jaccard(shingles(self._text(nf + pos)), shingles(self._text(fidx))) >= threshold
                    for pair, (pos, fidx) in near.items()
                    if pair not in known
                }
                bands.remember(fresh, threshold)
                hits = [near[pair][0] for pair, verdict in {**known, **fresh}.items() if verdict]
                prefix = min([prefix, *hits])
            db.execute(
                "INSERT INTO main.band (key, idx, tid) SELECT b.key, b.pos + ?, s.tid FROM walk.band b "
                "JOIN walk.seq s ON s.pos = b.pos WHERE b.pos < ?",
                (nf, prefix),
            )
            marked = db.execute(
                "UPDATE main.cand SET dropped = 1 WHERE idx IN (SELECT pos + ? FROM walk.seq WHERE kept = 0 AND pos < ?)",
                (nf, prefix),
            ).rowcount
            return prefix, marked
        finally:
            db.commit()  # no lock on the state is held while walking

    def _save(self, state: NearDuplicateState, prefix: int) -> None:
        """Store this walk's decisions for the next run: the rows after ``prefix`` are rewritten (a removed
        candidate's text id and keys go with them), the feedback texts kept, the fingerprint and a new
        generation. When another run saved since :meth:`_resume` read the state (its generation moved), the
        state is rewritten whole from this walk (complete in the spill either way), never mixed. A save that
        fails part way is rolled back: the state stays the last complete one."""
        db, nf = self.db, self.n_feedback
        db.commit()
        db.execute("BEGIN IMMEDIATE")
        try:
            stored_meta = self._stored()
            if stored_meta is None or stored_meta[0] != state.fp or stored_meta[1] != self._gen:
                prefix = 0
            if prefix == 0:  # a fresh state (another fingerprint may mean another layout)
                for table in ("meta", "fkept", "seq", "band"):
                    db.execute(f"DROP TABLE IF EXISTS walk.{table}")
                for ddl in self._WALK_TABLES:
                    db.execute(ddl)
            db.execute("DELETE FROM walk.meta")
            db.execute("INSERT INTO walk.meta VALUES (?, ?)", (state.fp, (stored_meta[1] if stored_meta else 0) + 1))
            db.execute("DELETE FROM walk.seq WHERE pos >= ?", (prefix,))
            db.execute("DELETE FROM walk.band WHERE pos >= ?", (prefix,))
            db.execute("INSERT INTO walk.seq SELECT idx - ?, tid, 1 - dropped FROM main.cand WHERE idx >= ?", (nf, nf + prefix))
            db.execute("INSERT INTO walk.band SELECT idx - ?, key FROM main.band WHERE idx >= ?", (nf, nf + prefix))
            db.execute("DELETE FROM walk.fkept")
            db.execute("INSERT INTO walk.fkept SELECT DISTINCT tid FROM main.band WHERE idx < ?", (nf,))
        except BaseException:
            db.rollback()
            raise
        db.commit()
        db.execute("DETACH DATABASE walk")

    def candidates(self, size: int) -> Iterator[list[_Candidate]]:
        """The kept candidates in order, ``size`` (at most) at a time."""
        import json
        from datetime import datetime

        self.flush()
        for start in range(0, self.n_cand, size):
            rows = self.db.execute(
                "SELECT data FROM cand WHERE idx >= ? AND idx < ? AND dropped = 0 ORDER BY idx", (start, start + size)
            )
            batch = []
            for (data,) in rows.fetchall():
                q, a, source, group_id, created_at, key = json.loads(data)
                batch.append(_Candidate(q, a, source, group_id, datetime.fromisoformat(created_at) if created_at else None, key))
            if batch:
                yield batch

    def add_example(self, ex: TrainingExample, key: str | None, seed: int) -> _Meta:
        idx = self.n_ex
        self.db.execute("INSERT INTO ex VALUES (?, ?)", (idx, ex.model_dump_json()))
        self.n_ex += 1
        return _Meta(idx, ex.group_id, ex.source, key, _order(ex, seed))

    def examples(self, metas: Sequence[_Meta]) -> list[TrainingExample]:
        """The examples of ``metas``, in that order (the written files: bounded by the caps)."""
        out: list[TrainingExample] = []
        for m in metas:
            (data,) = self.db.execute("SELECT data FROM ex WHERE idx = ?", (m.idx,)).fetchone()
            out.append(TrainingExample.model_validate_json(data))
        return out

    def close(self) -> None:
        self.db.close()
        self.dir.cleanup()


def _cap_validation(items: list[tuple[TrainingExample, Any]], cap: int, seed: int) -> tuple[list, list]:
    """Whole groups in split-hash order until ``cap`` examples; the later groups train instead. As the archive
    grows a group can only move from validation to train, never back: no trained example is validated on."""
    groups: dict[str, list[tuple[TrainingExample, Any]]] = defaultdict(list)
    for item in items:
        groups[item[0].group_id].append(item)
    kept: list[tuple[TrainingExample, Any]] = []
    moved: list[tuple[TrainingExample, Any]] = []
    for gid in sorted(groups, key=lambda g: (_unit(g, seed), g)):
        if moved or len(kept) + len(groups[gid]) > cap:
            moved.extend(groups[gid])
        else:
            kept.extend(groups[gid])
    return kept, moved


def _family(ex: TrainingExample) -> str:
    return "feedback" if ex.source in FEEDBACK_SOURCES else ex.source


def _order(ex: TrainingExample | _Meta, seed: int) -> float:
    # Stable and pseudo-random: which of its examples a key keeps, and where they land, is not its choice.
    if isinstance(ex, _Meta):
        return ex.order
    return _unit(f"{ex.group_id}/{_norm(ex.messages[-1].content)}", seed)


def _quota(share: float, others: int) -> int:
    """Most items a capped group may keep next to ``others`` items so that it holds at most ``share``."""
    return sys.maxsize if share >= 1 else math.floor(share * others / (1 - share) + 1e-9)


def _cap_shares(
    items: list[tuple[Any, str | None]],
    key_share: float,
    feedback_share: float,
    seed: int,
    skipped: Counter[str],
    dropped_groups: set[str] | None = None,
) -> list[tuple[Any, str | None]]:
    """Drop the excess of each API key (its share of the list at most ``key_share``, against the examples no
    key controls: other keys can only dilute it) and then of all feedback (at most ``feedback_share``)."""
    free = sum(1 for _, k in items if k is None)
    by_key: dict[str, list[int]] = defaultdict(list)
    for i, (_, k) in enumerate(items):
        if k is not None:
            by_key[k].append(i)
    quota = _quota(key_share, free)
    drop = {i for group in by_key.values() for i in sorted(group, key=lambda i: _order(items[i][0], seed))[quota:]}
    feedback = [i for i, (ex, _) in enumerate(items) if i not in drop and _family(ex) == "feedback"]
    others = len(items) - len(drop) - len(feedback)
    over = set(sorted(feedback, key=lambda i: _order(items[i][0], seed))[_quota(feedback_share, others) :])
    for reason, dropped in (("over_key_share", drop), ("over_feedback_share", over)):
        if dropped:  # no zero counts in the metrics
            skipped[reason] += len(dropped)
    if dropped_groups is not None:
        dropped_groups.update(items[i][0].group_id for i in drop | over)
    return [item for i, item in enumerate(items) if i not in drop | over]


def pairs_within_shares(rows: Sequence[Any], result: TrainsetResult) -> tuple[list[Any], int]:
    """Curated preference pairs (``chosen_id``, else any of ``generation_ids``) whose chosen example the
    key or feedback share dropped from the training set are dropped with it: a key over its share trains
    neither through SFT nor through DPO. Returns the pairs kept and how many were dropped."""
    if not result.share_dropped:
        return list(rows), 0
    kept = [r for r in rows if not ({r.chosen_id} if r.chosen_id else set(r.generation_ids)) & result.share_dropped]
    return kept, len(rows) - len(kept)


def _interleave(items: list[tuple[Any, Any]], seed: int) -> list[tuple[Any, Any]]:
    families: dict[str, list[int]] = defaultdict(list)
    for i, (ex, _) in enumerate(items):
        families[_family(ex)].append(i)
    placed = []
    for name, group in sorted(families.items()):
        ordered = sorted(group, key=lambda i: _order(items[i][0], seed))
        placed += [((j + 0.5) / len(ordered), name, i) for j, i in enumerate(ordered)]
    return [items[i] for _, _, i in sorted(placed)]


def interleave_sources(examples: Sequence[TrainingExample], seed: int) -> list[TrainingExample]:
    """Source families (feedback, conversation, kb_pair), each in a stable shuffled order, spread evenly
    in proportion to their sizes: every prefix of the result (the first training steps, a ``max_examples``
    cut) holds each family at its share of the whole, within one example."""
    return [ex for ex, _ in _interleave([(ex, None) for ex in examples], seed)]


def _near_eval(text: str, eval_shingles: list[set[int]], threshold: float, sizes: Sequence[int] = ()) -> bool:
    """Is a question a near copy of an eval question? (Only question-sized texts can be.) ``eval_shingles``:
    the eval queries' shingle sets, smallest first; ``sizes``: their sizes (computed when not given)."""
    if threshold <= 0 or not eval_shingles or len(text) > 1000:
        return False
    from bisect import bisect_left, bisect_right

    from llmops.text import jaccard, shingles

    s = shingles(text)
    n = len(s)
    # Jaccard <= min(|a|, |b|) / max(|a|, |b|): only sets of a size within [t * n, n / t] can reach the
    # threshold (the bisection takes a superset of them; the bound is checked again on each).
    sizes = sizes or [len(e) for e in eval_shingles]
    lo, hi = bisect_left(sizes, math.floor(threshold * n)), bisect_right(sizes, math.ceil(n / threshold))
    return any(min(n, len(e)) / max(n, len(e)) >= threshold and jaccard(s, e) >= threshold for e in eval_shingles[lo:hi])


def input_revision(paths: Sequence[str | Path]) -> dict[str, Any]:
    """md5 of each input file (as DVC computes it) and one revision over all: what this build was made from."""
    md5s = {str(p): hashlib.md5(Path(p).read_bytes()).hexdigest() for p in paths}
    combined = hashlib.sha256("".join(f"{k}:{v}\n" for k, v in sorted(md5s.items())).encode()).hexdigest()[:12]
    return {"data_rev": combined, "inputs": md5s}
