"""Incremental data stages: ingest, clean and redact process only new or changed conversations, reuse the
rest, propagate deletes (erasure) into every output and cache, and the monitor's window is the new batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from llmops import workspace as ws
from llmops.config import MonitorParams
from llmops.data.incremental import CACHE_DIR, PartitionedOutput, RecordCache, iter_records, partitions
from llmops.jsonl import write_jsonl
from llmops.monitoring.monitor import advance_watermark, current_window, monitor_batch
from llmops.records import Conversation, Turn
from llmops.reports.drift import DriftReport

STAGES = ("ingest", "clean", "redact")


def _conv(cid: str, day: int, text: str, agent: str = "Thanks, we are looking into it.") -> Conversation:
    return Conversation(
        conversation_id=cid,
        channel="chat",
        created_at=datetime(2026, 3, day, 12, tzinfo=UTC),
        turns=[Turn(role="customer", text=text), Turn(role="agent", text=agent)],
    )


def _archive(n: int = 12) -> list[Conversation]:
    return [_conv(f"c{i:02d}", 1 + i % 4, f"My parcel number {i} did not arrive, what can I do?") for i in range(n)]


def _run(stage: str) -> dict:
    subprocess.run([sys.executable, "-m", f"pipelines.{stage}"], check=True, capture_output=True, text=True)
    return json.loads(Path(ws.stage_metrics(stage)).read_text())["conversations"]


def _everything(workspace: Path, home: Path) -> bytes:
    """Every byte of every output, quarantine and cache (SQLite files included)."""
    roots = [workspace / "data/raw", workspace / "data/clean", workspace / "data/redacted", home / CACHE_DIR]
    return b"".join(p.read_bytes() for r in roots for p in sorted(r.rglob("*")) if p.is_file())


@pytest.mark.timeout(600)
def test_append_processes_only_new_conversations_and_a_delete_reaches_every_output(workspace: Path, settings_env: Path) -> None:
    source = workspace / "data/sample/conversations.jsonl"
    convs = _archive()
    convs[3] = _conv("c03", 4, "I am Maria Gonzalez, call me on 415-555-0132 about my parcel please")
    write_jsonl(source, convs)
    first = {s: _run(s) for s in STAGES}
    assert all(first[s]["processed"] == 12 and first[s]["reused"] == 0 for s in STAGES)
    assert first["ingest"]["partitions"] == 4
    assert len(partitions(workspace / ws.REDACTED_CONVERSATIONS)) == 4
    redacted_before = {p.name: p.read_bytes() for p in partitions(workspace / ws.REDACTED_CONVERSATIONS)}

    # A night later: two conversations arrive (a new day) and c03 is erased at the source.
    new = [_conv("n1", 9, "Where is my refund for order 77?"), _conv("n2", 9, "How do I change my delivery address?")]
    write_jsonl(source, [c for c in convs if c.conversation_id != "c03"] + new)
    second = {s: _run(s) for s in STAGES}
    for s in STAGES:
        assert (second[s]["processed"], second[s]["reused"], second[s]["deleted"]) == (2, 11, 1), s
    assert second["redact"]["partitions_reused"] == 3  # days 1-3 untouched; day 4 lost c03, day 9 is new
    after = {p.name: p.read_bytes() for p in partitions(workspace / ws.REDACTED_CONVERSATIONS)}
    assert {n for n in after if after[n] == redacted_before.get(n)} == {
        "2026-03-01.jsonl",
        "2026-03-02.jsonl",
        "2026-03-03.jsonl",
    }
    ids = [c.conversation_id for c in iter_records(workspace / ws.REDACTED_CONVERSATIONS, Conversation)]
    assert sorted(ids) == sorted([f"c{i:02d}" for i in range(12) if i != 3] + ["n1", "n2"])
    blob = _everything(workspace, settings_env)
    assert b"Maria" not in blob and b"415-555-0132" not in blob and b'"c03"' not in blob

    # Nothing changed: every stage reuses every partition.
    third = {s: _run(s) for s in STAGES}
    assert all((third[s]["processed"], third[s]["deleted"]) == (0, 0) for s in STAGES)
    assert third["redact"]["partitions_reused"] == third["redact"]["partitions"] == 5
    # ... and redacts nothing: feedback and documents did not change either (the leak gate's counts are kept).
    metrics = json.loads(Path(ws.stage_metrics("redact")).read_text())
    assert metrics["texts"] == 0 and metrics["leak_gate"]["documents"]["in"] > 0
    (workspace / ws.REDACTED / "documents.jsonl").write_text("")  # an output that changed is written again
    _run("redact")
    assert json.loads(Path(ws.stage_metrics("redact")).read_text())["texts"] > 0
    assert (workspace / ws.REDACTED / "documents.jsonl").stat().st_size > 0

    # `llmops pii purge` takes the record caches before the boundary with the private outputs.
    from llmops.data.purge import purge_private

    report = purge_private(workspace, state_dir=settings_env)
    assert {str(settings_env / CACHE_DIR / f"{s}.sqlite") for s in ("ingest", "clean")} <= set(report.paths)
    assert sorted(p.name for p in (settings_env / CACHE_DIR).iterdir()) == ["redact-files.json", "redact.sqlite"]  # post-boundary


def test_a_duplicate_reappears_when_its_original_is_deleted(workspace: Path, settings_env: Path) -> None:
    from llmops.config import CleanParams
    from llmops.data.clean import clean_partitioned

    raw = workspace / ws.RAW_CONVERSATIONS
    original = _conv("a", 1, "Where is my parcel?")
    copy = _conv("b", 2, "where is my  parcel?")  # the same after normalisation and case folding
    write_jsonl(raw / "2026-03-01.jsonl", [original])
    write_jsonl(raw / "2026-03-02.jsonl", [copy])

    def clean() -> list[str]:
        out = PartitionedOutput(workspace / ws.CLEAN_CONVERSATIONS, "fp")
        with RecordCache(settings_env / "clean.sqlite") as cache:
            clean_partitioned(raw, out, cache, CleanParams())
        return [c.conversation_id for c in iter_records(out.directory, Conversation)]

    assert clean() == ["a"]
    (raw / "2026-03-01.jsonl").unlink()
    assert clean() == ["b"]  # day 2 did not change, but its dropped duplicate lost its original


def test_the_monitor_window_is_the_new_batch(tmp_path: Path) -> None:
    parts = tmp_path / "conversations"
    write_jsonl(parts / "2026-03-01.jsonl", [_conv(f"a{i}", 1, "old question") for i in range(5)])
    write_jsonl(parts / "2026-03-09.jsonl", [_conv(f"b{i}", 9, "recent question") for i in range(4)])
    state, cfg = tmp_path / "window.sqlite", MonitorParams(current_days=7, min_current_rows=3)
    current_window(parts, state, cfg)  # a first window that was skipped: nothing marked, still a first run
    first = current_window(parts, state, cfg)
    assert sorted(c.conversation_id for c in first.rows) == [f"b{i}" for i in range(4)]  # the last 7 days
    advance_watermark(state, first)
    assert current_window(parts, state, cfg).rows == []  # nothing arrived since
    # Two arrivals, one of them late (an old creation day): both are new to the monitor.
    write_jsonl(parts / "2026-03-01.jsonl", [_conv(f"a{i}", 1, "old question") for i in range(5)] + [_conv("late", 1, "x")])
    write_jsonl(parts / "2026-03-10.jsonl", [_conv("c0", 10, "new question")])
    window = current_window(parts, state, cfg)
    assert sorted(c.conversation_id for c in window.rows) == ["c0", "late"]
    assert window.changed_partitions == 2
    body = monitor_batch(window.rows, window.rows, cfg, tmp_path / "drift", window=window.as_dict())
    assert body.skipped is not None and body.skipped.startswith("skipped: 2 current conversations < monitor.min_current_rows 3")
    assert body.drift_detected is False and body.window is not None and body.window.rows == 2
    saved = DriftReport.read(tmp_path / "drift")  # what was written reads back as written
    assert saved == body and json.loads((tmp_path / "drift/drift.json").read_text())["window"]["rows"] == 2


class _CountingRetriever:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def search(self, queries: list[str], k: int = 10) -> list[list[dict]]:
        self.asked += queries
        return [[{"doc_id": "d", "text": f"context for {q}", "score": 1.0}][:k] for q in queries]


def test_the_training_set_stage_searches_only_new_questions(tmp_path: Path) -> None:
    from llmops.data.incremental import CachedRetriever

    inner = _CountingRetriever()
    with RecordCache(tmp_path / "trainset.sqlite") as cache:
        first = CachedRetriever(inner, cache, "fp").search(["a?", "b?"], k=3)
    with RecordCache(tmp_path / "trainset.sqlite") as cache:
        again = CachedRetriever(inner, cache, "fp")
        assert again.search(["a?", "b?", "c?"], k=3)[:2] == first
        assert (again.searched, again.reused) == (1, 2) and inner.asked == ["a?", "b?", "c?"]
        assert cache.sweep() == 0
    with RecordCache(tmp_path / "trainset.sqlite") as cache:  # the index changed: a new fingerprint
        CachedRetriever(inner, cache, "fp2").search(["a?"], k=3)
        assert inner.asked[-1] == "a?" and cache.sweep() == 3  # the old index's results are gone


def test_an_append_only_source_is_read_from_where_the_last_run_stopped(workspace: Path, settings_env: Path) -> None:
    from llmops.data.quarantine import read_quarantine

    source = workspace / "data/sample/conversations.jsonl"
    write_jsonl(source, _archive(6))
    with source.open("a") as fh:
        fh.write("{broken\n")
    first = _run("ingest")
    assert (first["mode"], first["processed"], first["quarantined"]) == ("full", 6, 1)
    with source.open("a") as fh:
        fh.write(_conv("n1", 9, "Where is my refund?").model_dump_json() + "\n" + '{"conversation_id": ""}\n')
    second = _run("ingest")
    assert (second["mode"], second["processed"], second["reused"], second["out"]) == ("append", 1, 6, 7)
    assert (second["in"], second["quarantined"], second["partitions_written"]) == (9, 2, 1)
    held = read_quarantine(workspace / ws.QUARANTINE / "conversations.jsonl")
    assert [q.line_no for q in held] == [7, 9]  # the earlier bad line is kept, the new one added
    assert len(list(iter_records(workspace / ws.RAW_CONVERSATIONS, Conversation))) == 7
    # An edited line is no append: the full path runs, sees the change and the delete.
    lines = source.read_text().splitlines()
    source.write_text("\n".join([lines[0].replace("parcel", "letter"), *lines[2:]]) + "\n")
    third = _run("ingest")
    assert (third["mode"], third["processed"], third["reused"], third["deleted"]) == ("full", 1, 5, 2)
    assert len(list(iter_records(workspace / ws.RAW_CONVERSATIONS, Conversation))) == 6
    # An append together with a same-size edit of an earlier line (an erasure by overwriting) is no append either.
    lines = source.read_text().splitlines()
    edited = lines[0].replace("letter", "LETTER")
    assert len(edited) == len(lines[0]) and edited != lines[0]
    source.write_text("\n".join([edited, *lines[1:], _conv("n2", 10, "Card blocked?").model_dump_json()]) + "\n")
    fourth = _run("ingest")
    assert (fourth["mode"], fourth["processed"], fourth["reused"], fourth["deleted"]) == ("full", 2, 5, 1)


def test_a_file_digest_is_reused_while_the_file_is_untouched(tmp_path: Path) -> None:
    from llmops.data.incremental import file_digest

    part = tmp_path / "2026-12-05.jsonl"
    part.write_text("one\n")
    with RecordCache(tmp_path / "stage.sqlite") as cache:
        first = cache.digest(part)
        assert first == file_digest(part) == cache.digest(part)
        row = cache.db.execute("SELECT stat FROM file_digests WHERE path = ?", (str(part),)).fetchone()
        assert row == (f"{part.stat().st_size}:{part.stat().st_mtime_ns}:{part.stat().st_ino}",)
        part.write_text("two\n")  # same size, same inode, a later mtime (set: two writes can share a clock tick)
        os.utime(part, ns=(part.stat().st_atime_ns, part.stat().st_mtime_ns + 1_000_000_000))
        assert cache.digest(part) == file_digest(part) != first
        part.unlink()
        part.write_text("one\n")  # a new file (a checkout): another inode or mtime, hashed again
        assert cache.digest(part) == first


def test_the_redactor_builds_its_detector_on_first_need() -> None:
    from llmops.config import RedactParams
    from llmops.pii.redact import Redactor

    redactor = Redactor(RedactParams())
    assert not redactor.analyzer_loaded and redactor.redact_texts([]) == [] and not redactor.analyzer_loaded
    (out,) = redactor.redact_texts(["Call me on 415-555-0132 please"])
    assert redactor.analyzer_loaded and "415-555-0132" not in out
