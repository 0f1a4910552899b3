"""Evidently drift on real data: same-source windows do not drift, a different domain does."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from llmops.config import MonitorParams
from llmops.data.sources import banking77_conversations
from llmops.jsonl import read_jsonl
from llmops.monitoring.drift import drift_report
from llmops.records import Conversation

ROOT = Path(__file__).resolve().parents[2]


def test_same_source_no_drift_other_domain_drifts(tmp_path: Path, shared_data: Path) -> None:
    reference = read_jsonl(ROOT / "data/sample/reference_conversations.jsonl", Conversation)
    # Two halves of one processed window: same source, same processing.
    first, second = reference[::2], reference[1::2]
    cfg = MonitorParams(text_content_drift=False)
    same = drift_report(first, second, cfg, tmp_path / "same")
    assert not same.drift_detected, same.drifted_columns

    banking = list(banking77_conversations(shared_data / "banking77/train.csv"))[::50][:180]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shifted = drift_report(first, banking, cfg, tmp_path / "shifted")
    # a channel the reference lacks makes chi-square divide by zero inside scipy: drift, not a log full of warnings
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]
    assert shifted.drift_detected
    assert {"channel", "intent"} <= set(shifted.drifted_columns)
    saved = json.loads((tmp_path / "shifted/drift.json").read_text())
    assert saved["drift_detected"] is True
    assert (tmp_path / "shifted/report.html").stat().st_size > 10_000
