from __future__ import annotations

from datetime import UTC, datetime

from llmops.config import BaseParams, TrainsetParams
from llmops.finetune.trainset import build_trainset, conversation_example
from llmops.records import Conversation, EvalQuestion, Turn
from tests.factories import feedback_event as _event

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _conv(cid: str, *turns: tuple[str, str]) -> Conversation:
    return Conversation(conversation_id=cid, channel="chat", created_at=T0, turns=[Turn(role=r, text=t) for r, t in turns])


def test_conversation_turns_merge_and_end_on_agent() -> None:
    conv = _conv(
        "c",
        ("agent", "Welcome!"),
        ("customer", "hi"),
        ("customer", "my order?"),
        ("agent", "It ships today."),
        ("customer", "thanks"),
    )
    ex = conversation_example(conv, "SYS")
    assert ex is not None
    assert [(m.role, m.content) for m in ex.messages] == [
        ("system", "SYS"),
        ("user", "hi\nmy order?"),
        ("assistant", "It ships today."),
    ]
    assert conversation_example(_conv("d", ("customer", "hello?")), "SYS") is None


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
    res = build_trainset(convs, events, evals, TrainsetParams(validation_share=0.2, min_answer_chars=5), BaseParams())
    stats = res.stats()
    assert stats["skipped"] == {"duplicate": 1, "eval_overlap": 1, "feedback_not_positive": 2}
    assert stats["by_source"] == {"conversation": 50, "correction": 1, "rated_positive": 1}
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
