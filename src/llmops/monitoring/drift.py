"""Data drift of a current conversation batch against a reference window, with Evidently 0.7.

Signals per conversation: channel, intent, category, number of turns and, on the customer's text,
offline descriptors (length, word count, non-letter share, PII placeholders). Evidently picks the
statistical test per column type and size; a column drifts when its test fails, and the batch drifts
when the share of drifted columns reaches ``drift_share``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmops.config import MonitorParams
from llmops.records import Conversation

PLACEHOLDER = r"<[A-Z_]+_\d+>"
CATEGORICAL = ["channel", "intent", "category"]
NUMERICAL = ["n_turns"]


@dataclass
class DriftResult:
    drift_detected: bool
    drift_share: float
    drift_share_threshold: float
    drifted_columns: list[str] = field(default_factory=list)
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    reference_rows: int = 0
    current_rows: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def conversation_frame(conversations: Sequence[Conversation]) -> Any:
    """One row per conversation: the customer's words and the categorical/numeric signals."""
    import pandas as pd

    rows = []
    for c in conversations:
        rows.append(
            {
                "text": "\n".join(t.text for t in c.turns if t.role == "customer") or " ",
                "channel": c.channel,
                "intent": str(c.metadata.get("intent", "unknown")),
                "category": str(c.metadata.get("category", "unknown")),
                "n_turns": len(c.turns),
            }
        )
    return pd.DataFrame(rows, columns=["text", *CATEGORICAL, *NUMERICAL])


def _dataset(df: Any) -> Any:
    from evidently import DataDefinition, Dataset
    from evidently.descriptors import NonLetterCharacterPercentage, RegExp, TextLength, WordCount

    return Dataset.from_pandas(
        df,
        data_definition=DataDefinition(text_columns=["text"], categorical_columns=CATEGORICAL, numerical_columns=NUMERICAL),
        descriptors=[
            TextLength("text", alias="text_length"),
            WordCount("text", alias="word_count"),
            NonLetterCharacterPercentage("text", alias="non_letter_share"),
            RegExp("text", reg_exp=PLACEHOLDER, alias="has_pii_placeholder"),
        ],
    )


def _extract(snapshot: Any, drift_share: float) -> DriftResult:
    """Read column flags from the ValueDrift tests (FAIL = drift) and the drifted share."""
    d = snapshot.dict()
    status = {t["metric_config"]["metric_id"]: t["status"] for t in d["tests"]}
    result = DriftResult(drift_detected=False, drift_share=0.0, drift_share_threshold=drift_share)
    for m in d["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith(":DriftedColumnsCount"):
            result.drift_share = round(float(m["value"]["share"]), 4)
        elif cfg["type"].endswith(":ValueDrift"):
            detected = status.get(m["id"]) == "FAIL"
            result.columns[cfg["column"]] = {
                "score": round(float(m["value"]), 6),
                "method": cfg.get("method"),
                "threshold": cfg.get("threshold"),
                "detected": detected,
            }
            if detected:
                result.drifted_columns.append(cfg["column"])
    result.drift_detected = result.drift_share >= drift_share
    return result


def drift_report(
    reference: Sequence[Conversation], current: Sequence[Conversation], cfg: MonitorParams, out_dir: Path
) -> DriftResult:
    """Write ``report.html`` (Evidently) and ``drift.json`` (our summary) to ``out_dir``."""
    import json

    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref_df, cur_df = conversation_frame(reference), conversation_frame(current)
    columns = [*CATEGORICAL, *NUMERICAL, "text_length", "word_count", "non_letter_share", "has_pii_placeholder"]
    if cfg.text_content_drift:
        columns.append("text")
    # abs_text_content_drift: a domain classifier on the raw text; the default for small windows
    # (percentile version) bootstraps and costs ~15 s on a few hundred rows.
    preset = DataDriftPreset(columns=columns, drift_share=cfg.drift_share, text_method="abs_text_content_drift")
    snapshot = Report([preset], include_tests=True).run(_dataset(cur_df), _dataset(ref_df))  # current first
    result = _extract(snapshot, cfg.drift_share)
    result.reference_rows, result.current_rows = len(ref_df), len(cur_df)
    out_dir.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(out_dir / "report.html"))
    (out_dir / "drift.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")
    return result
