"""The training set over day partitions: an unchanged partition's screened candidates are reused (neither read
nor parsed), the result is the one a build from scratch gives, and a delete leaves nothing in the cache."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

from llmops.config import BaseParams, TrainsetParams
from llmops.data.incremental import RecordCache, SeenRecords, iter_records
from llmops.finetune.leaks import CachedIdFlags
from llmops.finetune.trainset import ConversationPartitions, TrainsetResult, build_trainset
from llmops.jsonl import write_jsonl
from llmops.records import Conversation, EvalQuestion, Turn
from tests.factories import feedback_event

_WORDS = "renew apply license office form fee online mail refund order card account branch visit weeks photo".split()
CFG = TrainsetParams(min_answer_chars=5, validation_share=0.2, max_feedback_share=1.0)
EVALS = [EvalQuestion(id="c3_1", query="conversation 7 how do I renew?", gold_doc_ids=["d"])]


def _text(i: int) -> str:
    rng = random.Random(i)
    return f"{i} " + " ".join(rng.choice(_WORDS) + str(rng.randrange(1000)) for _ in range(9))


def _conv(i: int, day: int, answer: str | None = None) -> Conversation:
    turns = [Turn(role="customer", text=f"conversation {_text(i)}?")]
    turns += [Turn(role="agent", text=answer if answer is not None else f"Answer: {_text(i + 10**4)}.")]
    created = datetime(2026, 3, day, 9, i % 60, tzinfo=UTC)
    return Conversation(conversation_id=f"c{i}", channel="chat", created_at=created, turns=turns)


def _archive(n: int) -> dict[int, list[Conversation]]:
    """Days 1-4; among them a duplicate answer pair, an answer too short, one without an agent turn and an eval
    dialogue (``c3``)."""
    days: dict[int, list[Conversation]] = {d: [] for d in range(1, 5)}
    for i in range(n):
        days[1 + i % 4].append(_conv(i, 1 + i % 4))
    days[2].append(_conv(0, 2).model_copy(update={"conversation_id": "copy-of-c0"}))
    days[3].append(_conv(900, 3, answer="No."))
    days[4].append(_conv(901, 4).model_copy(update={"turns": [Turn(role="customer", text="hello?")]}))
    return days


def _write(directory: Path, days: dict[int, list[Conversation]]) -> None:
    for path in directory.glob("*.jsonl"):
        path.unlink()
    for day, convs in days.items():
        write_jsonl(directory / f"2026-03-{day:02d}.jsonl", convs)


def _build(conversations: object) -> TrainsetResult:
    feedback = [feedback_event("g1", "feedback how do I apply?", "Gold: apply online with the form.", 1)]
    return build_trainset(conversations, feedback, EVALS, CFG, BaseParams())  # type: ignore[arg-type]


def _same(a: TrainsetResult, b: TrainsetResult) -> None:
    assert a.train == b.train and a.validation == b.validation
    assert a.provenance() == b.provenance() and a.skipped == b.skipped


def _run(directory: Path, db: Path, *, commit: bool = True) -> tuple[TrainsetResult, ConversationPartitions, SeenRecords, int]:
    with RecordCache(db) as cache:
        seen = SeenRecords(cache, "fp")
        parts = ConversationPartitions(directory, seen, cache, "fp")
        result = _build(parts)
        deleted = seen.gone()
        cache.sweep()
        if commit:
            seen.commit()
            parts.commit()
    return result, parts, seen, deleted


def test_unchanged_partitions_are_reused_and_the_result_is_a_build_from_scratch(tmp_path: Path) -> None:
    directory, db = tmp_path / "conversations", tmp_path / "trainset.sqlite"
    days = _archive(24)
    _write(directory, days)
    first, parts, seen, _ = _run(directory, db)
    _same(first, _build(iter_records(directory, Conversation)))
    assert first.skipped["duplicate"] == 1 and first.skipped["eval_overlap"] == 1 and first.skipped["no_agent_answer"] == 1
    assert (parts.parsed, parts.reused, seen.processed, seen.reused) == (4, 0, 27, 0)

    # Nothing changed: no partition is read, and the result is the same.
    again, parts, seen, deleted = _run(directory, db)
    _same(again, first)
    assert (parts.parsed, parts.reused, seen.processed, seen.reused, deleted) == (0, 4, 0, 27, 0)

    # A new day arrives and c5 (day 2) is erased: the two partitions are read, the others reused.
    days[5] = [_conv(100, 5), _conv(101, 5)]
    days[2] = [c for c in days[2] if c.conversation_id != "c5"]
    _write(directory, days)
    grown, parts, seen, deleted = _run(directory, db)
    _same(grown, _build(iter_records(directory, Conversation)))
    assert (parts.parsed, parts.reused) == (2, 3)
    assert (seen.processed, seen.reused, deleted) == (2, 26, 1)
    assert not any("c5" in r["group_id"].split("~") for r in grown.provenance())
    gone = _text(5).encode()
    assert gone not in db.read_bytes()  # the erased conversation's text left the cache (secure_delete)


def test_a_failed_run_stores_no_partition_and_a_new_eval_set_screens_again(tmp_path: Path) -> None:
    directory, db = tmp_path / "conversations", tmp_path / "trainset.sqlite"
    _write(directory, _archive(12))
    _, parts, _, _ = _run(directory, db, commit=False)  # failed before its outputs were written
    assert parts.parsed == 4
    _, parts, seen, _ = _run(directory, db)
    assert (parts.parsed, seen.processed) == (4, 15)  # counted and screened again
    with RecordCache(db) as cache:
        seen = SeenRecords(cache, "fp")
        parts = ConversationPartitions(directory, seen, cache, "fp")
        evals = [*EVALS, EvalQuestion(id="c1_1", query="another question", gold_doc_ids=["d"])]
        result = build_trainset(parts, [], evals, CFG, BaseParams())
        assert parts.parsed == 4 and result.skipped["eval_overlap"] == 2  # the eval set is part of a verdict


def test_id_verdicts_are_reused_and_only_new_ids_are_judged(tmp_path: Path) -> None:
    asked: list[str] = []

    def flag(ids: list[str]) -> list[bool]:
        asked.extend(ids)
        return ["555" in i for i in ids]

    with RecordCache(tmp_path / "trainset.sqlite") as cache:
        flags = CachedIdFlags(flag, cache, "fp")
        assert flags(["a", "call-555", "a"]) == [False, True, False] and asked == ["a", "call-555"]
    with RecordCache(tmp_path / "trainset.sqlite") as cache:
        flags = CachedIdFlags(flag, cache, "fp")
        assert flags(["call-555", "b"]) == [True, False] and asked[2:] == ["b"]
        assert (flags.judged, flags.reused) == (1, 1)


class _KnowledgeBase:
    """Retrieval over a fixed text: questions about even conversations get the passage their answer comes from."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def search(self, queries: list[str], k: int = 10) -> list[list[dict]]:
        self.asked += queries
        return [[{"doc_id": "d", "text": self.passage(q), "score": 1.0}][:k] for q in queries]

    @staticmethod
    def passage(question: str) -> str:
        i = int(question.split()[1])
        return f"Answer: {_text(i + 10**4)}." if i % 2 == 0 else "Nothing about it here."


def test_support_verdicts_are_reused_and_an_unsupported_answer_needs_no_context(tmp_path: Path) -> None:
    from llmops.finetune.trainset import ServingPrompt, SupportVerdicts

    convs = [_conv(i, 1) for i in range(10)]
    plain = build_trainset(convs, [], [], CFG, BaseParams(), prompt=ServingPrompt(_KnowledgeBase()))
    assert plain.skipped["unsupported_by_context"] == 5 and len(plain.train) + len(plain.validation) == 5
    for run in range(2):
        kb = _KnowledgeBase()
        with RecordCache(tmp_path / "trainset.sqlite") as cache:
            verdicts = SupportVerdicts(cache, "fp")
            result = build_trainset(convs, [], [], CFG, BaseParams(), prompt=ServingPrompt(kb), verdicts=verdicts)
        _same(result, plain)
        if run == 0:
            assert (verdicts.judged, verdicts.reused, len(kb.asked)) == (10, 0, 10)
        else:  # only the supported answers' contexts are looked up again (for their prompts)
            assert (verdicts.judged, verdicts.reused) == (0, 10)
            assert sorted(kb.asked) == sorted(c.turns[0].text for c in convs[::2])


def test_the_size_bound_on_near_eval_copies_changes_no_verdict() -> None:
    from llmops.finetune.trainset import _near_eval
    from llmops.text import jaccard, shingles

    rng = random.Random(5)

    def sentence() -> str:
        return " ".join(rng.choice(_WORDS[:6]) for _ in range(rng.randrange(1, 14)))

    evals = sorted((shingles(sentence()) for _ in range(60)), key=len)
    for threshold in (0.5, 0.8):
        verdicts = []
        for _ in range(400):
            text = sentence()
            brute = any(jaccard(shingles(text), e) >= threshold for e in evals)
            assert _near_eval(text, evals, threshold) == brute
            verdicts.append(brute)
        assert any(verdicts) and not all(verdicts)


def test_near_duplicate_verdicts_are_reused_and_drop_what_a_fresh_comparison_drops(tmp_path: Path) -> None:
    from llmops.finetune.trainset import MinHashBands

    rng = random.Random(3)

    def near_copies(n: int, prefix: str) -> list[Conversation]:
        out = []
        for i in range(n):
            words = _text(i % 30).split()
            if i >= 30 or prefix != "c":  # a near copy: a word changed
                words[rng.randrange(1, len(words))] = rng.choice(_WORDS)
            turns = [Turn(role="customer", text=f"question {i % 30}?"), Turn(role="agent", text=" ".join(words) + ".")]
            created = datetime(2026, 3, 1, tzinfo=UTC)
            out.append(Conversation(conversation_id=f"{prefix}{i}", channel="chat", created_at=created, turns=turns))
        return out

    convs = near_copies(120, "c")
    cfg = TrainsetParams(min_answer_chars=5, validation_share=0.2)
    counts = []
    for grown in (convs, convs + near_copies(10, "n")):  # then 10 new near copies: new pairs next to the known
        with RecordCache(tmp_path / "trainset.sqlite") as cache:
            bands = MinHashBands(BaseParams().seed, cache=cache)
            result = build_trainset(grown, [], [], cfg, BaseParams(), minhash=bands)
        plain = build_trainset(grown, [], [], cfg, BaseParams())
        assert 0 < plain.skipped["near_duplicate"] < 90
        _same(result, plain)
        counts.append((bands.pairs_compared, bands.pairs_reused))
    assert counts[0][0] > 0 and counts[0][1] == 0
    assert 0 < counts[1][0] < counts[0][0] and counts[1][1] >= counts[0][0]  # only pairs with a new text compared
