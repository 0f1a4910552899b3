"""Production quality from the generation log: a reference window against the most recent one.

Per window: rating rate (share of answers users rated), thumbs-down share (of the rated ones), latency,
tokens and refusal rate. Evidently tests each per-answer signal for drift (``quality.html``); the
quality *drop* rules (thumbs-down up, refusals up, latency up) come from params and feed the triggers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from llmops.config import MonitorParams
from llmops.records import FeedbackEvent
from llmops.reports.drift import QualityReport
from llmops.text import is_refusal

NUMERICAL = ["latency_ms", "prompt_tokens", "completion_tokens"]
CATEGORICAL = ["rated", "thumbs_down", "refused"]


def split_windows(events: Sequence[FeedbackEvent], current_days: int) -> tuple[list[FeedbackEvent], list[FeedbackEvent]]:
    """(reference, current): the current window is the last ``current_days`` days of the log."""
    if not events:
        return [], []
    cutoff = max(e.ts for e in events) - timedelta(days=current_days)
    return [e for e in events if e.ts <= cutoff], [e for e in events if e.ts > cutoff]


def quality_stats(events: Sequence[FeedbackEvent]) -> dict[str, float]:
    """Window summary: answers, rating_rate, thumbs_down_share, latency (mean, p95), tokens, refusal_rate."""
    import numpy as np

    n = len(events)
    if n == 0:
        return {"answers": 0}
    rated = [e for e in events if e.rating is not None]
    latency = np.array([e.latency_ms for e in events])
    return {
        "answers": n,
        "rating_rate": round(len(rated) / n, 4),
        "thumbs_down_share": round(sum(1 for e in rated if e.rating == -1) / len(rated), 4) if rated else 0.0,
        "latency_ms_mean": round(float(latency.mean()), 1),
        "latency_ms_p95": round(float(np.percentile(latency, 95)), 1),
        "completion_tokens_mean": round(sum(e.completion_tokens for e in events) / n, 1),
        "prompt_tokens_mean": round(sum(e.prompt_tokens for e in events) / n, 1),
        "refusal_rate": round(sum(1 for e in events if is_refusal(e.answer)) / n, 4),
    }


def feedback_frame(events: Sequence[FeedbackEvent]) -> Any:
    import pandas as pd

    rows = [
        {
            "latency_ms": e.latency_ms,
            "prompt_tokens": e.prompt_tokens,
            "completion_tokens": e.completion_tokens,
            "rated": "yes" if e.rating is not None else "no",
            "thumbs_down": "yes" if e.rating == -1 else "no",
            "refused": "yes" if is_refusal(e.answer) else "no",
        }
        for e in events
    ]
    return pd.DataFrame(rows, columns=NUMERICAL + CATEGORICAL)


def quality_alerts(ref: dict[str, float], cur: dict[str, float], cfg: MonitorParams) -> list[str]:
    """Human-readable reasons where the current window is worse than the reference beyond params."""
    if min(ref.get("answers", 0), cur.get("answers", 0)) < cfg.quality_min_answers:
        return []  # a handful of ratings swings by chance: no verdict on tiny windows
    alerts = []
    up = cur["thumbs_down_share"] - ref["thumbs_down_share"]
    if up > cfg.max_thumbs_down_increase:
        alerts.append(
            f"thumbs-down share {ref['thumbs_down_share']:.2f} -> {cur['thumbs_down_share']:.2f} "
            f"(+{up:.2f} > {cfg.max_thumbs_down_increase})"
        )
    up = cur["refusal_rate"] - ref["refusal_rate"]
    if up > cfg.max_refusal_increase:
        alerts.append(
            f"refusal rate {ref['refusal_rate']:.2f} -> {cur['refusal_rate']:.2f} (+{up:.2f} > {cfg.max_refusal_increase})"
        )
    if ref["latency_ms_p95"] > 0 and cur["latency_ms_p95"] / ref["latency_ms_p95"] > cfg.max_latency_ratio:
        alerts.append(
            f"latency p95 {ref['latency_ms_p95']:.0f} ms -> {cur['latency_ms_p95']:.0f} ms (x{cfg.max_latency_ratio} allowed)"
        )
    return alerts


def quality_report(events: Sequence[FeedbackEvent], cfg: MonitorParams, out_dir: Path | None = None) -> QualityReport:
    """Split the log into windows, summarise both, test per-answer signals for drift (``quality.html``)."""
    reference, current = split_windows(sorted(events, key=lambda e: e.ts), cfg.quality_current_days)
    ref_stats, cur_stats = quality_stats(reference), quality_stats(current)
    alerts = quality_alerts(ref_stats, cur_stats, cfg)
    windows = {}
    if reference and current:
        windows = {
            "reference": f"{reference[0].ts.isoformat()} .. {reference[-1].ts.isoformat()}",
            "current": f"{current[0].ts.isoformat()} .. {current[-1].ts.isoformat()}",
        }
    result = QualityReport(
        reference=ref_stats,
        current=cur_stats,
        drifted_columns=[],
        alerts=alerts,
        columns={},
        windows=windows,
        quality_drop=bool(alerts),
    )
    if len(reference) >= 2 and len(current) >= 2:  # Evidently needs a distribution on both sides
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        from llmops.monitoring.drift import evidently_columns

        dd = DataDefinition(numerical_columns=NUMERICAL, categorical_columns=CATEGORICAL)
        ref_ds = Dataset.from_pandas(feedback_frame(reference), data_definition=dd)
        cur_ds = Dataset.from_pandas(feedback_frame(current), data_definition=dd)
        snapshot = Report([DataDriftPreset(columns=NUMERICAL + CATEGORICAL)], include_tests=True).run(cur_ds, ref_ds)
        _, columns = evidently_columns(snapshot)
        result.drifted_columns = [name for name, col in columns.items() if col.detected]
        result.columns = columns
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            snapshot.save_html(str(out_dir / "quality.html"))
    return result
