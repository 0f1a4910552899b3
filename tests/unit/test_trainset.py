"""Training-set builder: sources, decontamination, filters, split and sampling (no retriever: bare prompts).
The served prompt format, the support check and the token window are in test_trainset_serving.py."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from llmops.config import BaseParams, FeedbackParams, TrainsetParams
from llmops.finetune.examples import broken_placeholder, broken_span, conversation_pairs, fit_answer, kb_pairs
from llmops.finetune.trainset import build_trainset, interleave_sources, max_key_share
from llmops.records import Conversation, Document, EvalQuestion, Turn
from tests.factories import feedback_event as _event

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _conv(cid: str, *turns: tuple[str, str]) -> Conversation:
    return Conversation(conversation_id=cid, channel="chat", created_at=T0, turns=[Turn(role=r, text=t) for r, t in turns])


@pytest.mark.parametrize(
    ("turns", "limit", "expected"),
    [
        (
            [
                ("agent", "Welcome!"),
                ("customer", "hi"),
                ("customer", "my order?"),
                ("agent", "It ships today."),
                ("customer", "ok"),
            ],
            0,
            [("hi\nmy order?", "It ships today.")],
        ),
        (
            [("customer", "a?"), ("agent", "A."), ("customer", "b?"), ("agent", "B."), ("agent", "More B.")],
            0,
            [("a?", "A."), ("b?", "B.\nMore B.")],
        ),
        ([("customer", "a?"), ("agent", "A."), ("customer", "b?"), ("agent", "B.")], 1, [("a?", "A.")]),
        ([("customer", "hello?")], 0, []),
    ],
)
def test_conversation_pairs(turns: list[tuple[str, str]], limit: int, expected: list[tuple[str, str]]) -> None:
    assert conversation_pairs(_conv("c", *turns), limit) == expected


@pytest.mark.parametrize(
    ("text", "broken"),
    [
        ("Your order {{Order Number}} ships today.", False),
        ("Log into your account on our {<PERSON_1>}}.", True),
        ("Call {{Customer Support Phone Number}} or see {{Website URL", True),
        ("No placeholders here.", False),
    ],
)
def test_broken_placeholder(text: str, broken: bool) -> None:
    assert broken_placeholder(text) is broken


@pytest.mark.parametrize(
    ("text", "broken"),
    [
        ("Write to <PERSON_1> at the DMV.", False),
        ("Write to <PERSON_1 at the DMV.", True),
        ("Write to <PERS", True),
        ("a \ufffd replacement char", True),
        ("Income-driven plans cap payments at 10% of income.", False),
    ],
)
def test_broken_span(text: str, broken: bool) -> None:
    assert broken_span(text) is broken


def _words(messages: list[dict[str, str]]) -> int:
    """A stand-in token count: words of all contents plus 2 per message (its role and end-of-turn token)."""
    return sum(len(m["content"].split()) + 2 for m in messages)


@pytest.mark.parametrize(
    ("answer", "limit", "expected"),
    [
        ("One two three.", 20, ("One two three.", "fits")),
        ("One two three. Four five six. Seven eight nine.", 13, ("One two three. Four five six.", "trimmed")),
        ("One two three four five six seven eight nine ten.", 10, (None, "answer_over_max_seq_len")),
        ("Short.", 4, (None, "prompt_over_max_seq_len")),
    ],
)
def test_fit_answer_cuts_at_a_sentence_or_drops(answer: str, limit: int, expected: tuple[str | None, str]) -> None:
    prompt = [{"role": "user", "content": "q"}]  # 3 "tokens"; the assistant turn adds 2 + its words
    assert fit_answer(prompt, answer, _words, limit) == expected


def test_kb_pairs_take_question_headings_with_their_paragraph() -> None:
    doc = Document(doc_id="d", text="Intro line \n\nHow do I apply? \nFill in form MV-15D.\nMail it.\n\nNo question here\nText.")
    assert list(kb_pairs(doc)) == [(1, "How do I apply?", "Fill in form MV-15D. Mail it.")]


def test_feedback_sources_eval_decontamination_and_dedup() -> None:
    convs = [_conv(f"c{i}", ("customer", f"question {i}"), ("agent", f"a sufficiently long answer {i}")) for i in range(50)]
    convs.append(_conv("dup", ("customer", "question 1"), ("agent", "a sufficiently long answer 1")))
    convs.append(_conv("leak", ("customer", "How do I renew my license?"), ("agent", "renew it online at the DMV site")))
    events = [
        _event("g1", "good q", "a helpful detailed answer", 1),
        _event("g2", "bad q", "no idea", -1, correction="the corrected gold answer"),
        _event("g3", "bad q2", "no idea", -1),
        _event("g4", "unrated", "something long enough here", None),
    ]
    evals = [EvalQuestion(id="e1", query="how do i renew my  LICENSE?", gold_doc_ids=["d"])]
    events.append(_event("g5", "broken q", "no idea", -1, correction="Visit our {<PERSON_1>}} page to fix it."))
    convs.append(_conv("gate-dialogue", ("customer", "an unrelated question"), ("agent", "an answer from a gate dialogue")))
    evals.append(EvalQuestion(id="gate-dialogue_3", query="something else entirely", gold_doc_ids=["d"]))
    res = build_trainset(convs, events, evals, TrainsetParams(validation_share=0.2, min_answer_chars=5), BaseParams())
    stats = res.stats()
    assert stats["skipped"] == {"broken_correction": 1, "duplicate": 1, "eval_overlap": 2, "feedback_not_positive": 2}
    assert stats["by_source"] == {"conversation": 50, "correction": 1, "rated_positive": 1}
    assert "gate-dialogue" not in {e.group_id for e in res.train + res.validation}
    corr = next(e for e in res.train + res.validation if e.source == "correction")
    assert corr.messages[-1].content == "the corrected gold answer"
    assert 0 < len(res.validation) < 20


def test_split_is_by_group_and_stable() -> None:
    convs = [_conv(f"c{i}", ("customer", f"q{i}"), ("agent", f"answer number {i}")) for i in range(200)]
    a = build_trainset(convs, [], [], TrainsetParams(min_answer_chars=1), BaseParams())
    b = build_trainset(list(reversed(convs)), [], [], TrainsetParams(min_answer_chars=1), BaseParams())
    train_ids = {e.group_id for e in a.train}
    val_ids = {e.group_id for e in a.validation}
    assert not train_ids & val_ids
    rows = a.provenance()
    assert len(rows) == len(a.train) + len(a.validation)
    assert {r["group_id"] for r in rows if r["split"] == "validation"} == val_ids
    assert val_ids == {e.group_id for e in b.validation}
    assert 5 <= len(val_ids) <= 40


LONG = (
    "I understand you want to cancel order {n}. Please open your account, go to Orders, select the order and "
    "choose Cancel. If the order has already shipped you can return it within thirty days for a full refund."
)


def test_near_duplicates_and_quality_filters() -> None:
    convs = [_conv(f"t{i}", ("customer", "please cancel my order"), ("agent", LONG.format(n=i))) for i in range(30)]
    convs += [
        _conv("u1", ("customer", "how do refunds work?"), ("agent", "Refunds go back to your card in five days.")),
        _conv("u2", ("customer", "what is my code?"), ("agent", "#### 1234-5678-9999 // 0000 ####")),
        _conv("u3", ("customer", "tell me everything"), ("agent", "word " * 2000)),
    ]
    cfg = TrainsetParams(min_answer_chars=5, validation_share=0.0)
    res = build_trainset(convs, [], [], cfg, BaseParams())
    assert res.skipped["near_duplicate"] == 29  # 30 templated copies -> 1
    assert res.skipped["answer_not_text"] == 1 and res.skipped["answer_too_long"] == 1
    assert {e.group_id for e in res.train} == {"t0", "u1"}
    placeholders = [_conv("p", ("customer", "where is my order?"), ("agent", "Track order {{Order Number}} on {<PERSON_1>}}."))]
    assert build_trainset(placeholders, [], [], cfg, BaseParams()).skipped["broken_placeholder"] == 1
    off = build_trainset(convs, [], [], cfg.model_copy(update={"near_dup_threshold": 0.0}), BaseParams())
    assert len(off.train) == 31 and "near_duplicate" not in off.skipped


def test_near_copies_of_eval_questions_never_enter_training() -> None:
    convs = [
        _conv(
            "a", ("customer", "How can I renew my driver license online today?"), ("agent", "Use the DMV website renewal page.")
        ),
        _conv("b", ("customer", "Where is my parcel?"), ("agent", "Check the tracking link in your email.")),
    ]
    evals = [EvalQuestion(id="e", query="how can I renew my driver license online today", gold_doc_ids=["d"])]
    res = build_trainset(convs, [], evals, TrainsetParams(min_answer_chars=5, validation_share=0.0), BaseParams())
    assert [e.group_id for e in res.train] == ["b"] and res.skipped["eval_overlap"] == 1


def test_no_group_spans_train_and_validation() -> None:
    """A conversation re-ingested with more turns (same id, different text) stays on one side of the split."""
    convs = []
    for i in range(100):
        convs.append(_conv(f"c{i}", ("customer", f"first question number {i}"), ("agent", f"first answer about topic {i}")))
        convs.append(
            _conv(f"c{i}", ("customer", f"a later different question {i}"), ("agent", f"a different later answer {i} here"))
        )
    res = build_trainset(convs, [], [], TrainsetParams(min_answer_chars=5, validation_share=0.3), BaseParams())
    train_ids, val_ids = {e.group_id for e in res.train}, {e.group_id for e in res.validation}
    assert train_ids and val_ids and not train_ids & val_ids
    assert len(res.train) + len(res.validation) == 200
    assert all(e.created_at == T0 for e in res.train)


_WORDS = "renew apply license office form fee online mail refund order card account branch visit weeks photo".split()


def _text(i: int, n: int = 9) -> str:
    """A distinct sentence per ``i`` (no near duplicates among them)."""
    rng = random.Random(i)
    return f"{i} " + " ".join(rng.choice(_WORDS) + str(rng.randrange(1000)) for _ in range(n))


def _sources(n_conv: int, n_feedback: int, n_kb: int) -> tuple[list[Conversation], list, list[Document]]:
    convs = [
        _conv(f"c{i}", ("customer", f"conversation {_text(i)}?"), ("agent", f"Answer: {_text(i + 10**4)}."))
        for i in range(n_conv)
    ]
    events = [
        _event(f"g{i}", f"feedback {_text(i + 2 * 10**4)}?", f"Gold: {_text(i + 3 * 10**4)}.", 1) for i in range(n_feedback)
    ]
    docs = [
        Document(doc_id=f"d{i}", text=f"Page {i}\n\nHow does {_text(i + 4 * 10**4, 4)} work?\n{_text(i + 5 * 10**4)}.")
        for i in range(n_kb)
    ]
    return convs, events, docs


def test_sources_are_interleaved_in_proportion_so_no_source_dominates_the_first_steps() -> None:
    convs, events, docs = _sources(80, 10, 10)
    cfg = TrainsetParams(min_answer_chars=5, validation_share=0.0, max_feedback_share=1.0)
    res = build_trainset(convs, events, [], cfg, BaseParams(), documents=docs)
    sources = ["feedback" if e.source == "rated_positive" else e.source for e in res.train]
    assert len(sources) == 100 and sources.count("feedback") == 10
    for m in range(1, 101):  # every prefix (the first LoRA steps) holds each source at its share, within one example
        for family, share in (("conversation", 0.8), ("feedback", 0.1), ("kb_pair", 0.1)):
            assert abs(sources[:m].count(family) - share * m) <= 1, (m, family)
    assert interleave_sources(res.train, 42) == res.train  # stable
    cut = build_trainset(convs, events, [], cfg.model_copy(update={"max_examples": 20}), BaseParams(), documents=docs)
    assert [e.source for e in cut.train].count("conversation") == 16 and cut.skipped["over_max_examples"] == 80
    assert {e.source for e in cut.train} == {"conversation", "rated_positive", "kb_pair"}


def _keyed(events: list, key: str | None) -> list:
    return [e.model_copy(update={"feedback_key_name": key, "feedback_role": "reviewer" if key else None}) for e in events]


@pytest.mark.parametrize(("validation_share", "max_examples"), [(0.0, 2000), (0.2, 2000), (0.0, 40)])
def test_one_keys_share_holds_on_the_final_files(validation_share: float, max_examples: int) -> None:
    convs, events, _ = _sources(100, 60, 0)
    feedback = [*_keyed(events[:50], "mallory"), *_keyed(events[50:53], "ops"), *_keyed(events[53:55], None)]
    cfg = TrainsetParams(min_answer_chars=5, validation_share=validation_share, max_examples=max_examples)
    res = build_trainset(convs, feedback, [], cfg, BaseParams(), feedback_cfg=FeedbackParams(max_share_per_key=0.05))
    from_mallory = {e.generation_id for e in feedback if e.feedback_key_name == "mallory"}
    for split, keys in ((res.train, res.train_keys), (res.validation, res.validation_keys)):
        assert len(keys) == len(split) and [k == "mallory" for k in keys] == [e.group_id in from_mallory for e in split]
        if split:
            assert sum(e.group_id in from_mallory for e in split) / len(split) <= 0.05
            assert max_key_share(keys) <= 0.05
    kept = sum(e.group_id in from_mallory for e in res.train + res.validation)
    assert kept >= 1 and res.skipped["over_key_share"] >= 50 - kept - res.skipped["over_max_examples"]
    assert res.stats()["max_key_share_train"] <= 0.05 and res.stats()["keys"] >= 1
    if max_examples == 2000 and validation_share == 0:  # quota: 0.05 * 102 / 0.95 -> 5 of mallory's, ops' 3 all kept
        assert kept == 5 and res.skipped["over_key_share"] == 45 and res.train_keys.count("ops") == 3


def test_all_feedback_together_is_capped() -> None:
    convs, events, _ = _sources(30, 60, 0)
    cfg = TrainsetParams(min_answer_chars=5, validation_share=0.0, max_feedback_share=0.25)
    res = build_trainset(convs, events, [], cfg, BaseParams())  # operator-imported: no key, only the source cap
    assert res.skipped["over_feedback_share"] == 50 and res.stats()["feedback_share_train"] == 10 / 40
    assert "over_key_share" not in res.skipped
    opened = build_trainset(convs, events, [], cfg.model_copy(update={"max_feedback_share": 1.0}), BaseParams())
    assert len(opened.train) == 90 and "over_feedback_share" not in opened.skipped


def test_fitted_answers_keep_their_end_of_turn_token_with_the_real_tokenizer(model_cache: Path) -> None:
    from transformers import AutoTokenizer

    from llmops.finetune.lora import encode_example
    from llmops.finetune.trainset import AnswerFit
    from llmops.finetune.validate import base_token_counter
    from llmops.llm.local import ensure_base_model

    long = " ".join(f"Step {i} is to fill in section {i} of the form." for i in range(40))
    convs = [_conv("c", ("customer", "How do I fill in the form?"), ("agent", long))]
    fit = AnswerFit(base_token_counter(model_cache / "base"), 96)
    res = build_trainset(convs, [], [], TrainsetParams(validation_share=0.0), BaseParams(), fit=fit)
    [example] = res.train
    assert res.trimmed == 1 and example.messages[-1].content.endswith("of the form.")
    tok = AutoTokenizer.from_pretrained(ensure_base_model(model_cache / "base"))
    encoded = encode_example(tok, example, 96)
    assert encoded is not None and len(encoded[0]) <= 96
    assert tok.decode([t for t in encoded[1] if t != -100]).rstrip().endswith("<|im_end|>")


def test_validation_is_capped_and_an_append_never_moves_a_trained_group_into_validation() -> None:
    def conv(i: int) -> Conversation:
        return _conv(f"c{i}", ("customer", f"question {_text(i)}?"), ("agent", f"Answer: {_text(i + 10**4)}."))

    cfg = TrainsetParams(min_answer_chars=1, validation_share=0.5, max_validation=20, near_dup_threshold=0)
    before = build_trainset([conv(i) for i in range(100)], [], [], cfg, BaseParams())
    after = build_trainset([conv(i) for i in range(110)], [], [], cfg, BaseParams())  # a 10% append
    for res in (before, after):
        assert len(res.validation) == 20 and res.validation_capped > 0 and res.stats()["validation_capped"] > 0
        assert not {e.group_id for e in res.train} & {e.group_id for e in res.validation}
    assert len(before.train) + len(before.validation) == 100  # over the cap: trained on, not dropped
    trained_before = {e.group_id for e in before.train}
    assert not trained_before & {e.group_id for e in after.validation}
    # The order is stable: the examples of the old archive keep their relative order in train.jsonl.
    old_in_after = [e.group_id for e in after.train if e.group_id in trained_before]
    assert old_in_after == [e.group_id for e in before.train if e.group_id in set(old_in_after)]


def test_answer_fits_are_reused_across_runs_and_only_new_examples_are_tokenised(tmp_path: Path) -> None:
    from llmops.data.incremental import RecordCache
    from llmops.finetune.trainset import AnswerFit

    counted: list[int] = []

    def count(messages: list[dict[str, str]]) -> int:
        counted.append(1)
        return _words(messages)

    convs, events, docs = _sources(40, 5, 5)
    cfg = TrainsetParams(min_answer_chars=5, validation_share=0.2, max_feedback_share=1.0)
    plain = build_trainset(convs, events, [], cfg, BaseParams(), documents=docs, fit=AnswerFit(_words, 200))
    assert len(plain.train) + len(plain.validation) == 50
    with RecordCache(tmp_path / "trainset.sqlite") as cache:
        fit = AnswerFit(count, 200, cache=cache, fp="fp")
        first = build_trainset(convs, events, [], cfg, BaseParams(), documents=docs, fit=fit)
        assert first.train == plain.train and first.validation == plain.validation and first.trimmed == plain.trimmed
        assert fit.fitted == 50 and fit.reused == 0 and counted
    with RecordCache(tmp_path / "trainset.sqlite") as cache:
        counted.clear()
        grown, _, _ = _sources(42, 0, 0)
        fit = AnswerFit(count, 200, cache=cache, fp="fp")
        again = build_trainset(grown, events, [], cfg, BaseParams(), documents=docs, fit=fit)
        assert (fit.fitted, fit.reused) == (2, 50) and 0 < len(counted) <= 2 * 4  # two new answers tokenised
        assert len(again.train) + len(again.validation) == len(first.train) + len(first.validation) + 2


def test_the_spilled_near_duplicate_index_drops_what_the_in_memory_one_drops() -> None:
    """The build keeps its MinHash buckets and shingles on disk (memory does not follow the archive); it
    must drop exactly the texts :func:`llmops.text.near_duplicates` drops, in the same order."""
    from llmops.text import near_duplicates

    rng = random.Random(3)
    convs = []
    for i in range(150):
        base = _text(i % 40, 14)
        words = base.split()
        if i >= 40:  # a near copy: a word or two changed
            words[rng.randrange(1, len(words))] = _WORDS[rng.randrange(len(_WORDS))]
        convs.append(_conv(f"c{i}", ("customer", f"question {i % 40}?"), ("agent", " ".join(words) + ".")))
    cfg = TrainsetParams(min_answer_chars=5, validation_share=0.0)
    res = build_trainset(convs, [], [], cfg, BaseParams())
    texts, seen = [], set()
    for c in convs:  # the candidates the build's exact-duplicate filter keeps, in order
        q, a = conversation_pairs(c, cfg.max_pairs_per_conversation)[0]
        if (q, a) not in seen:
            seen.add((q, a))
            texts.append(f"{q}\n{a}")
    dropped = near_duplicates(texts, cfg.near_dup_threshold, seed=BaseParams().seed)
    assert 0 < len(dropped) < len(texts) - 40
    assert res.skipped["near_duplicate"] == len(dropped)
    assert len(res.train) == len(texts) - len(dropped)


def test_minhash_band_keys_are_reused_across_runs(tmp_path: Path) -> None:
    from llmops.data.incremental import RecordCache
    from llmops.finetune.trainset import MinHashBands

    convs, _, _ = _sources(30, 0, 0)
    cfg = TrainsetParams(min_answer_chars=5, validation_share=0.2)
    plain = build_trainset(convs, [], [], cfg, BaseParams())
    with RecordCache(tmp_path / "trainset.sqlite") as cache:
        bands = MinHashBands(BaseParams().seed, cache=cache)
        first = build_trainset(convs, [], [], cfg, BaseParams(), minhash=bands)
        assert (bands.computed, bands.reused) == (30, 0) and first.train == plain.train
    with RecordCache(tmp_path / "trainset.sqlite") as cache:
        grown, _, _ = _sources(32, 0, 0)
        bands = MinHashBands(BaseParams().seed, cache=cache)
        again = build_trainset(grown, [], [], cfg, BaseParams(), minhash=bands)
        assert (bands.computed, bands.reused) == (2, 30)
        assert again.train + again.validation != [] and len(again.train) + len(again.validation) == 32
