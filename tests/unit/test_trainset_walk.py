"""The near-duplicate walk resumed from the last run's decisions (``NearDuplicateState``) drops exactly what a
whole walk drops: after an append, an erasure in the middle, new feedback near a kept text, a kept feedback
text gone, another fingerprint."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from llmops.config import BaseParams, TrainsetParams
from llmops.finetune.trainset import MinHashBands, NearDuplicateState, TrainsetResult, build_trainset
from llmops.records import Conversation, FeedbackEvent, Turn
from tests.factories import feedback_event

_WORDS = "renew apply license office form fee online mail refund order card account branch visit weeks photo".split()
CFG = TrainsetParams(min_answer_chars=5, validation_share=0.2)


def _text(i: int, n: int = 40) -> str:
    rng = random.Random(i)
    return f"{i} " + " ".join(rng.choice(_WORDS) + str(rng.randrange(1000)) for _ in range(n))


def _near_copy(text: str, rng: random.Random) -> str:
    words = text.split()
    words[rng.randrange(1, len(words))] = rng.choice(_WORDS)
    return " ".join(words)


def _corpus(n: int) -> list[Conversation]:
    """40 distinct answers, then near copies of them (a word changed): most copies are dropped."""
    rng = random.Random(3)
    convs = []
    for i in range(n):
        answer = _text(i % 40) if i < 40 else _near_copy(_text(i % 40), rng)
        turns = [Turn(role="customer", text=f"question {i % 40}?"), Turn(role="agent", text=answer + ".")]
        convs.append(
            Conversation(conversation_id=f"c{i}", channel="chat", created_at=datetime(2026, 1, 1, tzinfo=UTC), turns=turns)
        )
    return convs


def _build(convs: list[Conversation], events: list[FeedbackEvent], state: NearDuplicateState | None) -> TrainsetResult:
    return build_trainset(convs, events, [], CFG, BaseParams(), minhash=MinHashBands(BaseParams().seed), near_state=state)


def test_a_resumed_walk_drops_what_a_whole_walk_drops(tmp_path: Path) -> None:
    path = tmp_path / "walk.sqlite"

    def run(convs: list[Conversation], events: list[FeedbackEvent], fp: str = "v1") -> tuple[NearDuplicateState, TrainsetResult]:
        state = NearDuplicateState(path, fp)
        resumed = _build(convs, events, state)
        whole = _build(convs, events, None)
        assert (resumed.train, resumed.validation, resumed.skipped) == (whole.train, whole.validation, whole.skipped)
        return state, resumed

    convs = _corpus(200)
    gold = [feedback_event("g1", "feedback one?", "x", correction=f"Gold: {_text(90001)}.")]
    state, first = run(convs[:150], gold)
    assert (state.resumed, state.walked) == (0, 150) and first.skipped["near_duplicate"] > 50
    state, _ = run(convs, gold)  # an append: only the new conversations are walked
    assert (state.resumed, state.walked) == (150, 50)
    state, _ = run(convs, gold)  # nothing new
    assert (state.resumed, state.walked) == (200, 0)
    erased = convs[:60] + convs[61:]  # erased in the middle: the walk goes on from there
    state, before = run(erased, gold)
    assert (state.resumed, state.walked) == (60, 139)

    # New feedback near the text a conversation of the prefix kept: that conversation is dropped now (the
    # feedback comes first), so the walk starts over from it.
    near = feedback_event("g2", "question 7?", "x", correction=_near_copy(_text(7), random.Random(9)) + ".")
    state, with_near = run(erased, [*gold, near])
    assert state.resumed == 7 and with_near.skipped["near_duplicate"] == before.skipped["near_duplicate"] + 1
    assert {e.group_id for e in before.train + before.validation} - {
        e.group_id for e in with_near.train + with_near.validation
    } == {"c7"}
    # Feedback that is near nothing: the prefix holds.
    other = feedback_event("g3", "feedback three?", "x", correction=f"Gold: {_text(90003)}.")
    state, _ = run(erased, [*gold, near, other])
    assert (state.resumed, state.walked) == (199, 0)
    # A feedback text kept last time is gone: what it dropped may stay now, so the whole walk.
    state, _ = run(erased, [*gold, other])
    assert (state.resumed, state.walked) == (0, 199)
    # Another fingerprint (threshold, bands or code): the whole walk, then resumed again.
    state, _ = run(erased, [*gold, other], fp="v2")
    assert state.resumed == 0
    state, _ = run(erased, [*gold, other], fp="v2")
    assert (state.resumed, state.walked) == (199, 0)
    assert path.stat().st_mode & 0o777 == 0o600


def test_two_runs_sharing_the_state_never_leave_it_mixed(tmp_path: Path) -> None:
    """Run B saves between run A's resume and A's save (isolated flow runs share LLMOPS_HOME): A sees the
    generation moved and rewrites the state whole from its own walk, so the next run resumes correctly."""
    from llmops.finetune.trainset import _Candidate, _Spill

    rng = random.Random(1)
    base = [f"w{rng.randrange(10**6)}" for _ in range(40)]

    def variant(lo: int, hi: int, tag: str) -> str:
        return " ".join(f"{tag}{i}" if lo <= i < hi else w for i, w in enumerate(base))

    b, c, f = " ".join(base), variant(30, 40, "c"), variant(0, 10, "f")  # c and f each near b, not near each other
    a, d = (" ".join(f"{t}{rng.randrange(10**6)}" for _ in range(40)) for t in "ad")
    bands, threshold, path = MinHashBands(0), 0.5, tmp_path / "walk.sqlite"

    def spill(feedback: list[str], convs: list[str]) -> _Spill:
        s = _Spill()
        for i, t in enumerate(feedback):
            s.add_candidate(_Candidate("q", t, "correction", f"g{i}"))
        for i, t in enumerate(convs):
            s.add_candidate(_Candidate("q", t, "conversation", f"c{i}"))
        s.flush()
        return s

    def dropped(s: _Spill) -> list[int]:
        return [r[0] for r in s.db.execute("SELECT dropped FROM cand ORDER BY idx")]

    def whole(feedback: list[str], convs: list[str]) -> list[int]:
        s = spill(feedback, convs)
        s.drop_near_duplicates(threshold, bands)
        out = dropped(s)
        s.close()
        return out

    assert whole([], [a, b, c]) != whole([f], [a, b, c])[1:]  # f changes which of b and c is kept
    first = spill([], [a, b, c])
    first.drop_near_duplicates(threshold, bands, state=NearDuplicateState(path, "v1"))
    first.close()
    run_a, state_a = spill([], [a, b, c, d]), NearDuplicateState(path, "v1")
    run_a._walk(0, run_a.n_feedback, threshold, bands, 1000)
    prefix, _ = run_a._resume(state_a, threshold, bands)
    assert prefix == 3
    run_b = spill([f], [a, b, c])  # another workspace, with feedback near b
    run_b.drop_near_duplicates(threshold, bands, state=NearDuplicateState(path, "v1"))
    run_b.close()
    run_a._walk(run_a.n_feedback + prefix, run_a.n_cand, threshold, bands, 1000)
    run_a._save(state_a, prefix)
    run_a.close()
    run_c, state_c = spill([], [a, b, c, d]), NearDuplicateState(path, "v1")
    run_c.drop_near_duplicates(threshold, bands, state=state_c)
    assert state_c.resumed == 4 and dropped(run_c) == whole([], [a, b, c, d])
    run_c.close()


def test_a_save_that_fails_part_way_leaves_the_last_complete_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault while the state is written (after the old rows are deleted, before the kept texts' band keys
    are in) is rolled back; a later run that resumes from the state still drops what a whole walk drops."""
    import sqlite3

    import llmops.finetune.trainset as trainset

    path = tmp_path / "walk.sqlite"
    convs = _corpus(200)
    _build(convs[:150], [], NearDuplicateState(path, "v1"))

    class FailingDb:
        def __init__(self, db: sqlite3.Connection) -> None:
            self._db = db

        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            if sql.startswith("INSERT INTO walk.band"):
                raise sqlite3.OperationalError("disk I/O error (injected)")
            return self._db.execute(sql, *args)

        def __getattr__(self, name: str) -> object:
            return getattr(self._db, name)

    class FailingSpill(trainset._Spill):
        def __init__(self) -> None:
            super().__init__()
            self.db = FailingDb(self.db)  # type: ignore[assignment]

    erased = convs[:10] + convs[11:150]  # the walk restarts at 10: the state's rows from 10 on are rewritten
    with monkeypatch.context() as patch:
        patch.setattr(trainset, "_Spill", FailingSpill)
        with pytest.raises(sqlite3.OperationalError, match="injected"):
            _build(erased, [], NearDuplicateState(path, "v1"))
    grown = erased + convs[150:]  # near copies of texts kept after position 10: compared with their band keys
    state = NearDuplicateState(path, "v1")
    resumed, whole = _build(grown, [], state), _build(grown, [], None)
    assert (resumed.train, resumed.validation, resumed.skipped) == (whole.train, whole.validation, whole.skipped)
    assert state.resumed == 10
