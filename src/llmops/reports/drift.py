"""``drift.json``: the monitor's verdict on a batch (conversation drift, embedding drift, production quality).

Written through :meth:`DriftReport.write` only (the monitor stage, ``llmops monitor drift``), read back through
:meth:`DriftReport.read` by the flows' observe step, the run history, the retrain triggers and the run summary.
Keys that were never set are not written, so the file keeps its shape: a skipped window has ``skipped`` and no
per-column detail; a tested one has the Evidently columns and thresholds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmops.reports.base import HandOff

DRIFT_REPORT = "drift.json"


class ColumnDrift(BaseModel):
    """One Evidently ValueDrift test: the score, the test and whether it failed (= drift)."""

    model_config = ConfigDict(extra="forbid")

    score: float
    method: str | None = None
    threshold: float | None = None
    detected: bool = False


class EmbeddingDrift(BaseModel):
    """Embedding drift of queries or documents (:mod:`llmops.monitoring.embeddings`)."""

    model_config = ConfigDict(extra="forbid")

    score: float
    threshold: float
    method: str
    detected: bool
    reference_rows: int
    current_rows: int
    note: str | None = None  # why a score was not judged (too few rows)
    embedder: str | None = None


class QualityReport(BaseModel):
    """Production quality from the generation log (:mod:`llmops.monitoring.quality`)."""

    model_config = ConfigDict(extra="forbid")

    reference: dict[str, int | float] = Field(default_factory=dict)  # a count (answers) stays an int on disk
    current: dict[str, int | float] = Field(default_factory=dict)
    drifted_columns: list[str] = Field(default_factory=list)
    alerts: list[str] = Field(default_factory=list)
    columns: dict[str, ColumnDrift] = Field(default_factory=dict)
    windows: dict[str, str] = Field(default_factory=dict)
    quality_drop: bool = False


class DriftWindow(BaseModel):
    """How the current conversations were chosen (:class:`llmops.monitoring.monitor.Window`)."""

    model_config = ConfigDict(extra="forbid")

    basis: str
    rows: int
    changed_partitions: int = 0
    oldest: str | None = None
    newest: str | None = None


class DriftReport(HandOff):
    """The whole ``drift.json``. ``drifted_signals`` is what drifted (Evidently columns, ``new_vocabulary``,
    ``query_embeddings``, ``document_embeddings``); ``skipped`` says why the conversation checks did not run."""

    model_config = ConfigDict(extra="forbid")

    skipped: str | None = None
    drift_detected: bool = False
    drift_share: float | None = None
    drift_share_threshold: float | None = None
    drifted_columns: list[str] = Field(default_factory=list)
    columns: dict[str, ColumnDrift] = Field(default_factory=dict)
    reference_rows: int | None = None
    current_rows: int | None = None
    new_vocab_share: float | None = None
    new_vocab_threshold: float | None = None
    embeddings: dict[str, EmbeddingDrift] = Field(default_factory=dict)
    drifted_signals: list[str] = Field(default_factory=list)
    quality: QualityReport | None = None
    window: DriftWindow | None = None
    thresholds: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _signals_of_old_files(cls, data: Any) -> Any:
        # drift.json written before embedding and vocabulary signals named only the Evidently columns.
        if isinstance(data, dict) and "drifted_signals" not in data and "drifted_columns" in data:
            data = {**data, "drifted_signals": list(data["drifted_columns"])}
        return data

    def flag(self, signal: str) -> None:
        """Record a drifted signal: the batch drifts."""
        self.drifted_signals = [*self.drifted_signals, signal]
        self.drift_detected = True

    def write(self, directory: Path) -> Path:
        """Write ``directory/drift.json`` (the one writer of that file); returns its path."""
        return self.dump(directory / DRIFT_REPORT)

    @classmethod
    def read(cls, path: Path) -> DriftReport:
        """Read a ``drift.json`` (or the directory holding one); a missing or malformed file is a
        :class:`DataContractError` naming it."""
        path = path / DRIFT_REPORT if path.is_dir() else path
        return cls.load(
            path,
            what="drift report",
            missing="the monitor stage writes it (dvc repro monitor)",
            fix="rerun the monitor stage that writes it",
        )
