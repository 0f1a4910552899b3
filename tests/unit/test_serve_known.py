"""The answer service's memory of generation ids (feedback is accepted for them) is bounded: a time window
and a size cap, and only the recent date partitions of the generation log are read at start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from llmops.feedback.log import GenerationLog
from llmops.serve.answerer import KnownGenerations
from llmops.serve.components import known_generation_ids
from tests.factories import feedback_event


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_known_ids_are_bounded_by_size_and_window() -> None:
    clock = Clock()
    known = KnownGenerations(max_size=3, window_s=60, clock=clock)
    for i in range(5):
        known.add(f"g{i}", "web" if i % 2 else None)
    assert len(known) == 3 and known.asker("g0") == (False, None) and known.asker("g1") == (False, None)
    assert known.asker("g3") == (True, "web") and known.asker("g4") == (True, None)
    clock.now += 30
    known.add("g5", "app")
    clock.now += 31  # g2..g4 are past the window now, g5 is not
    assert [known.asker(g)[0] for g in ("g2", "g3", "g4", "g5")] == [False, False, False, True]
    assert len(known) == 1


def test_a_flood_of_ids_keeps_memory_flat() -> None:
    known = KnownGenerations(max_size=1000, window_s=86400)
    for i in range(100_000):
        known.add(f"{i:032x}", "mallory")
    assert len(known) == 1000 and known.asker(f"{99_999:032x}") == (True, "mallory")


def _write_day(root: Path, day: datetime, ids: list[str]) -> None:
    """Generation-log lines as the service writes them, in the date partition of ``day``."""
    part = root / "generations" / f"date={day:%Y-%m-%d}" / "part-test.jsonl"
    part.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for n, gid in enumerate(ids):
        ev = feedback_event(gid, "q", "a").model_copy(update={"ts": day + timedelta(seconds=n), "key_name": "web"})
        lines.append(ev.model_dump_json(exclude_none=True))
    part.write_text("\n".join([*lines, "{not json"]) + "\n", encoding="utf-8")


def test_only_recent_partitions_are_loaded_newest_kept(tmp_path: Path) -> None:
    today = datetime(2026, 12, 5, tzinfo=UTC)
    for age in (30, 8, 6, 0):
        _write_day(tmp_path, today - timedelta(days=age), [f"d{age}-{i}" for i in range(4)])
    loaded = known_generation_ids(tmp_path, 7, 100, today=today.date())
    assert [gid for gid, _, _ in loaded] == [f"d{age}-{i}" for age in (6, 0) for i in range(4)]
    assert {key for _, key, _ in loaded} == {"web"} and loaded == sorted(loaded, key=lambda r: r[2])
    assert [gid for gid, _, _ in known_generation_ids(tmp_path, 7, 3, today=today.date())] == ["d0-1", "d0-2", "d0-3"]


def test_the_log_writer_and_the_loader_agree(tmp_path: Path) -> None:
    log = GenerationLog(tmp_path)
    ev = feedback_event("g-now", "q", "a").model_copy(update={"ts": datetime.now(UTC), "key_name": "app"})
    log.append_generation(ev)
    log.close()
    [(gid, key, at)] = known_generation_ids(tmp_path, 1, 10)
    assert (gid, key) == ("g-now", "app") and abs(at - ev.ts.timestamp()) < 1e-3
