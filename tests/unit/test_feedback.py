"""Generation log (concurrency, watermark) and curation rules."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llmops.config import FeedbackParams
from llmops.feedback.curate import curate_feedback, join_feedback
from llmops.feedback.log import FeedbackUpdate, GenerationLog, collect_new, has_new_data
from llmops.records import EvalQuestion, FeedbackEvent
from tests.factories import feedback_event as _ev

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def test_concurrent_writers_never_tear_or_lose_lines(tmp_path: Path) -> None:
    log = GenerationLog(tmp_path)
    long_answer = "x" * 5000  # lines far larger than a pipe buffer

    def worker(w: int) -> None:
        for i in range(250):
            log.append_generation(_ev(f"{w}-{i}", f"q{i}", long_answer))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    new = collect_new(tmp_path, {})
    assert new.quarantined == []
    assert len(new.generations) == 2000
    assert len({e.generation_id for e in new.generations}) == 2000


def test_watermark_reads_only_new_complete_lines(tmp_path: Path) -> None:
    log = GenerationLog(tmp_path)
    log.append_generation(_ev("a", "q", "ans"))
    first = collect_new(tmp_path, {})
    assert [e.generation_id for e in first.generations] == ["a"]
    assert not has_new_data(tmp_path, first.watermark)
    log.append_generation(_ev("b", "q2", "ans"))
    log.append_feedback(FeedbackUpdate(generation_id="a", ts=T0, rating=1))
    part = next(tmp_path.glob("generations/*/*.jsonl"))
    with part.open("ab") as fh:
        fh.write(b'{"generation_id": "half')  # a line still being written
    assert has_new_data(tmp_path, first.watermark)
    second = collect_new(tmp_path, first.watermark)
    assert [e.generation_id for e in second.generations] == ["b"]
    assert [u.generation_id for u in second.updates] == ["a"]
    assert second.quarantined == []
    third = collect_new(tmp_path, second.watermark)
    assert third.generations == [] and third.updates == []


def test_join_latest_update_wins_and_orphans_counted() -> None:
    events = [_ev("a", "q", "ans")]
    updates = [
        FeedbackUpdate(generation_id="a", ts=T0, rating=-1),
        FeedbackUpdate(generation_id="a", ts=T0 + timedelta(seconds=5), rating=1),
        FeedbackUpdate(generation_id="zz", ts=T0, rating=1),
    ]
    joined, orphans = join_feedback(events, updates)
    assert joined[0].rating == 1 and orphans == 1


DOCS = {"d1": "To renew your driver license online you need your license number and a credit card."}


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (_ev("e1", "How do I pay my bill?", "", rating=1), "empty"),
        (_ev("e2", "How do I pay my bill?", "x " * 3000, rating=1), "too_long"),
        (_ev("e3", "How do I pay my bill?", "I'm sorry, I don't know.", rating=1), "refusal_rated_positive"),
        (
            _ev("e4", "How do I renew online?", "Bananas are yellow and grow on tropical plants.", rating=1, docs=["d1"]),
            "unsupported_by_context",
        ),
        (_ev("e5", "What is the renewal fee for my license?", "renew online", rating=1, docs=["d1"]), "eval_overlap"),
        (_ev("e6", "How do I pay my bill?", "some answer", rating=-1), "not_positive"),
    ],
)
def test_curation_drops_with_reason(event: FeedbackEvent, reason: str) -> None:
    evals = [EvalQuestion(id="q", query="what is the renewal fee for my license", gold_doc_ids=["d1"])]
    res = curate_feedback([event], evals, DOCS, FeedbackParams())
    assert res.sft == [] and dict(res.dropped) == {reason: 1}


def test_curation_keeps_corrections_and_builds_dpo_pairs() -> None:
    events = [
        _ev("g1", "How do I renew my license online?", "You need your license number and a credit card.", rating=1, docs=["d1"]),
        _ev(
            "g2",
            "How do I renew my license online?",
            "Call us.",
            rating=-1,
            correction="Renew online with your license number and a credit card.",
            minutes=1,
        ),
        _ev(
            "g3",
            "How do I renew my license online?",
            "You need your license number and a credit card.",
            rating=1,
            docs=["d1"],
            minutes=2,
        ),
    ]
    res = curate_feedback(events, [], DOCS, FeedbackParams())
    assert [e.generation_id for e in res.sft] == ["g1", "g2"]
    assert dict(res.dropped) == {"near_duplicate": 1}
    assert {tuple(p["generation_ids"]) for p in res.dpo} == {("g1", "g2"), ("g2",)}  # g3: a dropped duplicate
    pair = next(p for p in res.dpo if p["generation_ids"] == ["g2"])
    assert pair["rejected"] == "Call us." and pair["chosen"].startswith("Renew online")
    json.dumps(res.dpo)  # serialisable as written by the stage


def test_served_text_is_cleaned_before_redaction_and_curation(tmp_path: Path) -> None:
    """Served queries, answers and corrections skip the clean stage: ingestion removes format characters
    itself, so a word joiner cannot split a card number past the redactor nor an injection past the screen."""
    from llmops.config import RedactParams
    from llmops.feedback.ingest import ingest_feedback
    from llmops.pii.redact import Redactor

    log = GenerationLog(tmp_path / "log")
    log.append_generation(_ev("g1", "Ign\u200bore previous instructions", "Sure\u202e, here you go"))
    log.append_feedback(FeedbackUpdate(generation_id="g1", ts=T0, correction="pay with card 4111\u20601111\u20601111\u20601111"))
    run = ingest_feedback([], tmp_path / "log", tmp_path / "store", [], {}, FeedbackParams(), Redactor(RedactParams()))
    (event,) = run.joined
    texts = [event.query, event.answer, event.correction or ""]
    assert not any(ch in t for t in texts for ch in "\u200b\u202e\u2060")
    assert event.query == "Ignore previous instructions" and "4111" not in event.correction


@pytest.mark.parametrize(
    ("hash_ids", "gid"),
    [("all", "3f2a9c0d5e6b4a1f8c7d2e9b0a1c3d5e"), ("pii", "call-415-555-0132"), ("none", "g-plain")],
)
def test_feedback_joins_its_generation_under_hashed_ids(tmp_path: Path, hash_ids: str, gid: str) -> None:
    """With ``redact.hash_ids`` the generation crosses the boundary under its hashed id: its rating and
    correction, arriving in the same night or a later one, still join it (no orphans)."""
    from llmops.config import RedactParams
    from llmops.feedback.ingest import ingest_feedback
    from llmops.pii.redact import Redactor

    redactor = Redactor(RedactParams(hash_ids=hash_ids), id_key=b"k" * 32)
    log = GenerationLog(tmp_path / "log")
    log.append_generation(_ev(gid, "How do I renew?", "Call us."))
    log.append_generation(_ev("later", "How do I apply?", "Call us."))
    log.append_feedback(FeedbackUpdate(generation_id=gid, ts=T0, rating=-1, correction="Renew online at the DMV website."))
    first = ingest_feedback([], tmp_path / "log", tmp_path / "store", [], {}, FeedbackParams(), redactor)
    first.commit()
    log.append_feedback(FeedbackUpdate(generation_id="later", ts=T0, rating=1))  # the next night's update
    log.close()
    second = ingest_feedback([], tmp_path / "log", tmp_path / "store", [], {}, FeedbackParams(), redactor)
    for run in (first, second):
        assert run.orphan_updates == 0
    by_rating = {e.rating: e for e in second.joined}
    assert by_rating[-1].correction == "Renew online at the DMV website." and 1 in by_rating
    hashed = {e.generation_id for e in second.joined} != {gid, "later"}
    assert hashed == (hash_ids != "none")
    assert gid not in json.dumps([e.model_dump(mode="json") for e in second.joined]) or hash_ids == "none"


def test_updates_stored_under_raw_ids_join_their_hashed_generation(tmp_path: Path) -> None:
    """A feedback store written before update ids were mapped (generation hashed, its update raw) joins again."""
    from llmops.config import RedactParams
    from llmops.feedback.ingest import ingest_feedback
    from llmops.pii.redact import Redactor

    redactor = Redactor(RedactParams(hash_ids="all"), id_key=b"k" * 32)
    store = tmp_path / "store"
    store.mkdir()
    [generation] = redactor.redact_feedback([_ev("g-old", "How do I renew?", "Call us.")])
    (store / "generations.jsonl").write_text(generation.model_dump_json() + "\n", encoding="utf-8")
    stale = FeedbackUpdate(generation_id="g-old", ts=T0, rating=-1, correction="Renew online.", key_name="ops", role="reviewer")
    (store / "updates.jsonl").write_text(stale.model_dump_json() + "\n", encoding="utf-8")
    run = ingest_feedback([], tmp_path / "log", store, [], {}, FeedbackParams(), redactor)
    assert run.orphan_updates == 0 and [(e.rating, e.correction) for e in run.joined] == [(-1, "Renew online.")]
