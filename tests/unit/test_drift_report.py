"""drift.json through DriftReport keeps the bytes the monitor wrote before it was typed."""

from __future__ import annotations

import json
from pathlib import Path

from llmops.reports.drift import DriftReport


def test_quality_counts_stay_integers_on_disk(tmp_path: Path) -> None:
    quality = {"reference": {"answers": 25, "refusal_rate": 0.2}, "current": {"answers": 15, "refusal_rate": 0.3333}}
    body = {"drift_detected": False, "drift_share": 0.3, "quality": quality}
    path = DriftReport.model_validate(body).write(tmp_path)
    written = json.loads(path.read_text(encoding="utf-8"))["quality"]
    assert json.dumps(written["reference"]) == '{"answers": 25, "refusal_rate": 0.2}'
    assert json.dumps(DriftReport.read(path).as_dict()["quality"]["current"]) == '{"answers": 15, "refusal_rate": 0.3333}'
