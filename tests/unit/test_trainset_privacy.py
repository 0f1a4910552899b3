"""Privacy of the feedback and training-set path: quarantines that hold personal data are never pushed and
`llmops pii purge` / `llmops pii quarantine` cover them; eval dialogues stay out of training under hashed ids;
the training-set leak gate holds a leaking record back and goes on, failing only above redact.max_leak_share."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from llmops import workspace as ws
from llmops.config import BaseParams, RedactParams, TrainsetParams
from llmops.data.purge import PRIVATE, purge_private
from llmops.data.quarantine import hold, write_quarantine
from llmops.errors import PIILeakError
from llmops.finetune.leaks import hold_back_leaks
from llmops.finetune.trainset import build_trainset
from llmops.pii.redact import Redactor
from llmops.pii.scan import Scanner
from llmops.pii.vault import Vault, hashed_id
from llmops.records import Conversation, EvalQuestion, Turn
from tests.factories import feedback_event

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "lena.canary@example.com"


def test_feedback_and_trainset_quarantines_are_never_pushed_and_are_purged() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    flags = {}
    for stage in ("feedback", "trainset"):
        for out in stages[stage]["outs"]:
            path, opts = next(iter(out.items())) if isinstance(out, dict) else (out, {})
            flags[path] = opts.get("push", True)
    assert flags == {
        "data/feedback": True,
        "data/feedback-quarantine": False,
        "data/trainset": True,
        "data/trainset-quarantine": False,
    }
    assert {ws.FEEDBACK_QUARANTINE, ws.TRAINSET_QUARANTINE} <= set(PRIVATE)
    stage = (ROOT / "pipelines/feedback.py").read_text()  # the stage writes its quarantine outside data/feedback
    assert 'ws.FEEDBACK / "quarantine.jsonl"' not in stage and "ws.FEEDBACK_QUARANTINE" in stage


def test_purge_and_the_quarantine_cli_cover_them(tmp_path: Path, settings_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmops.cli import app

    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    key = Vault.generate_key()
    held = [hold("generation-log/generations/date=2026-12-01/part-a.jsonl", 3, "invalid JSON", f'{{"query": "{EMAIL}"')]
    for where in (ws.FEEDBACK_QUARANTINE / "generation-log.jsonl", ws.TRAINSET_QUARANTINE / "records.jsonl"):
        write_quarantine(tmp_path / where, held, key)
        listed = CliRunner().invoke(app, ["pii", "quarantine", str(tmp_path / where)])
        assert listed.exit_code == 0 and "part-a.jsonl:3: invalid JSON [sealed]" in listed.output and EMAIL not in listed.output
    report = purge_private(tmp_path)
    assert {"data/feedback-quarantine", "data/trainset-quarantine"} <= set(report.paths)
    assert not (tmp_path / ws.FEEDBACK_QUARANTINE).exists() and not (tmp_path / ws.TRAINSET_QUARANTINE).exists()


def _conv(cid: str, question: str, answer: str) -> Conversation:
    turns = [Turn(role="customer", text=question), Turn(role="agent", text=answer)]
    return Conversation(conversation_id=cid, channel="chat", created_at=datetime(2026, 1, 1, tzinfo=UTC), turns=turns)


@pytest.mark.parametrize("hash_ids", ["all", "none"])
def test_eval_dialogues_stay_out_of_training_under_hashed_ids(hash_ids: str) -> None:
    key = b"k" * 32
    redactor = Redactor(RedactParams(hash_ids=hash_ids), id_key=key)
    raw = [
        _conv("dlg-gate-7", "how do I renew a permit online", "use the permit portal with your number"),
        _conv("c1", "q one here", "an answer that is long enough"),
    ]
    crossed = [c.model_copy(update={"conversation_id": redactor.public_ids([c.conversation_id])[0]}) for c in raw]
    assert (crossed[0].conversation_id == hashed_id("dlg-gate-7", key)) == (hash_ids == "all")
    evals = [EvalQuestion(id="dlg-gate-7_3", query="a different gate question", gold_doc_ids=["d"])]
    cfg = TrainsetParams(min_answer_chars=5, validation_share=0.0)
    res = build_trainset(crossed, [], evals, cfg, BaseParams(), public_ids=redactor.public_ids)
    assert [e.group_id for e in res.train] == [crossed[1].conversation_id] and res.skipped["eval_overlap"] == 1
    if hash_ids == "all":  # without the boundary's id mapping the gate dialogue would train
        assert len(build_trainset(crossed, [], evals, cfg, BaseParams()).train) == 2


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(RedactParams())


def _trainset(n: int, leaky: int) -> tuple[object, list[dict[str, object]]]:
    convs = [_conv(f"c{i}", f"question number {i} about permits", f"answer number {i} about the permit office") for i in range(n)]
    for i in range(leaky):
        convs[i] = _conv(f"c{i}", f"question number {i} about permits", f"write to {EMAIL} for answer number {i}")
    res = build_trainset(convs, [], [], TrainsetParams(min_answer_chars=5, validation_share=0.2), BaseParams())
    pairs = [
        {"prompt": "renew?", "chosen": "Use the portal.", "rejected": "Call 415-555-0132 now."},
        {"prompt": "fee?", "chosen": "64 dollars.", "rejected": "No idea."},
    ]
    return res, pairs


def test_leak_gate_holds_back_a_leaking_record_and_goes_on(scanner: Scanner) -> None:
    res, pairs = _trainset(200, 1)
    before = len(res.train) + len(res.validation)  # type: ignore[attr-defined]
    kept_pairs, gate = hold_back_leaks(res, pairs, scanner, max_leak_share=0.01)  # type: ignore[arg-type]
    assert len(gate.quarantined) == 2 and gate.records_in == before + 2 and gate.residual.keys() >= {"EMAIL_ADDRESS"}
    assert kept_pairs == pairs[1:] and len(res.train) + len(res.validation) == before - 1  # type: ignore[attr-defined]
    assert EMAIL not in str([e.to_openai() for e in res.train + res.validation])  # type: ignore[attr-defined]
    assert all(EMAIL not in q.reason and "415-555" not in q.reason for q in gate.quarantined)  # reasons hold no values
    assert res.skipped["residual_personal_data"] == 1 and len(res.train_keys) == len(res.train)  # type: ignore[attr-defined]
    gate.check()  # 2 of 202 records: under 1%
    assert gate.report()["passed"] and "lena" not in str(gate.report())


def test_leak_gate_fails_above_the_share(scanner: Scanner) -> None:
    res, pairs = _trainset(50, 5)
    _, gate = hold_back_leaks(res, pairs, scanner, max_leak_share=0.01)  # type: ignore[arg-type]
    assert len(gate.quarantined) == 6 and not gate.report()["passed"]
    with pytest.raises(PIILeakError, match="data/trainset-quarantine"):
        gate.check()


def test_feedback_events_carry_no_key_names_into_the_files() -> None:
    ev = feedback_event("g1", "how do I renew my permit", "a", correction="use the permit portal with your number")
    ev = ev.model_copy(update={"feedback_key_name": "mallory", "feedback_role": "reviewer"})
    convs = [_conv(f"c{i}", f"question number {i} about permits", f"answer number {i} about the office") for i in range(40)]
    res = build_trainset(convs, [ev], [], TrainsetParams(min_answer_chars=5, validation_share=0.0), BaseParams())
    assert res.train_keys.count("mallory") == 1 and "mallory" not in str(
        [*map(lambda e: e.to_openai(), res.train), res.provenance()]
    )


def test_leak_verdicts_are_reused_and_the_detector_is_loaded_only_for_new_texts(scanner: Scanner, tmp_path: Path) -> None:
    """The gate with per-text verdicts cached: the same findings as a full scan; a rerun scans nothing and
    loads no detector; after an append only the new texts are scanned; the cache holds no value."""
    from llmops.data.incremental import RecordCache
    from llmops.finetune.leaks import CachedScanner

    made: list[int] = []

    def make() -> Scanner:
        made.append(1)
        return scanner

    res, pairs = _trainset(60, 1)
    _, full = hold_back_leaks(res, pairs, scanner, max_leak_share=0.05)  # type: ignore[arg-type]
    with RecordCache(tmp_path / "trainset.sqlite") as cache:
        res, pairs = _trainset(60, 1)
        cached = CachedScanner(make, cache, "fp")
        _, first = hold_back_leaks(res, pairs, cached, max_leak_share=0.05)  # type: ignore[arg-type]
        assert [q.reason for q in first.quarantined] == [q.reason for q in full.quarantined] and made == [1]
        assert cached.scanned > 0 and cache.sweep() == 0
    with RecordCache(tmp_path / "trainset.sqlite") as cache:
        res, pairs = _trainset(60, 1)
        again = CachedScanner(make, cache, "fp")
        _, second = hold_back_leaks(res, pairs, again, max_leak_share=0.05)  # type: ignore[arg-type]
        assert (again.scanned, made) == (0, [1]) and again.reused == cached.scanned + cached.reused
        assert [q.reason for q in second.quarantined] == [q.reason for q in full.quarantined]
        assert cache.sweep() == 0
    with RecordCache(tmp_path / "trainset.sqlite") as cache:
        res, pairs = _trainset(62, 1)  # two new conversations
        grown = CachedScanner(make, cache, "fp")
        hold_back_leaks(res, pairs, grown, max_leak_share=0.05)  # type: ignore[arg-type]
        assert made == [1, 1] and 0 < grown.scanned <= 10 and grown.reused > 200  # only the new records' texts
    raw = (tmp_path / "trainset.sqlite").read_bytes()
    assert EMAIL.encode() not in raw and b"lena" not in raw  # offsets and types only
    assert oct((tmp_path / "trainset.sqlite").stat().st_mode & 0o777) == "0o600"
