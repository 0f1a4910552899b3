from __future__ import annotations

from datetime import UTC, datetime

from llmops.config import BaseParams, TrainsetParams
from llmops.finetune.trainset import build_trainset, conversation_example
from llmops.records import Conversation, EvalQuestion, FeedbackEvent, Turn

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _conv(cid: str, *turns: tuple[str, str]) -> Conversation:
    return Conversation(conversation_id=cid, channel="chat", created_at=T0, turns=[Turn(role=r, text=t) for r, t in turns])


def _event(gid: str, query: str, answer: str, rating: int | None, correction: str | None = None) -> FeedbackEvent:
    return FeedbackEvent(
        generation_id=gid,
        ts=T0,
        query=query,
        answer=answer,
        model_id="m",
        index_version="i",
        data_rev="r",
        latency_ms=1,
        prompt_tokens=1,
        completion_tokens=1,
        rating=rating,
        correction=correction,
    )


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
    assert val_ids == {e.group_id for e in b.validation}
    assert 5 <= len(val_ids) <= 40
