"""``drift.json``: the monitor's verdict on a batch (conversation drift, embedding drift, production quality).

Written through :meth:`DriftReport.write` only (the monitor stage, ``llmops monitor drift``), read back through
:meth:`DriftReport.read` by the flows' observe step, the run history, the retrain triggers and the run summary.
Keys that were never set are not written, so the file keeps its shape: a skipped window has ``skipped`` and no
per-column detail; a tested one has the Evidently columns and thresholds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from llmops.errors import DataContractError

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

    reference: dict[str, int | float] = {}  # a count (answers) stays an int on disk
    current: dict[str, int | float] = {}
    drifted_columns: list[str] = []
    alerts: list[str] = []
    columns: dict[str, ColumnDrift] = {}
    windows: dict[str, str] = {}
    quality_drop: bool = False


class DriftWindow(BaseModel):
    """How the current conversations were chosen (:class:`llmops.monitoring.monitor.Window`)."""

    model_config = ConfigDict(extra="forbid")

    basis: str
    rows: int
    changed_partitions: int = 0
    oldest: str | None = None
    newest: str | None = None


class DriftReport(BaseModel):
    """The whole ``drift.json``. ``drifted_signals`` is what drifted (Evidently columns, ``new_vocabulary``,
    ``query_embeddings``, ``document_embeddings``); ``skipped`` says why the conversation checks did not run."""

    model_config = ConfigDict(extra="forbid")

    skipped: str | None = None
    drift_detected: bool = False
    drift_share: float | None = None
    drift_share_threshold: float | None = None
    drifted_columns: list[str] = []
    columns: dict[str, ColumnDrift] = {}
    reference_rows: int | None = None
    current_rows: int | None = None
    new_vocab_share: float | None = None
    new_vocab_threshold: float | None = None
    embeddings: dict[str, EmbeddingDrift] = {}
    drifted_signals: list[str] = []
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

    def as_dict(self) -> dict[str, Any]:
        """The JSON body: the keys that were set, nothing added."""
        return self.model_dump(mode="json", exclude_unset=True)

    def write(self, directory: Path) -> Path:
        """Write ``directory/drift.json`` (the one writer of that file); returns its path."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / DRIFT_REPORT
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> DriftReport:
        """Read a ``drift.json`` (or the directory holding one); a missing or malformed file is a
        :class:`DataContractError` naming it."""
        path = path / DRIFT_REPORT if path.is_dir() else path
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError as exc:
            raise DataContractError(f"{path} does not exist: the monitor stage writes it (dvc repro monitor)") from exc
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "the file"
            raise DataContractError(
                f"{path} is not a valid drift report ({where}: {err['msg']}): rerun the monitor stage that writes it"
            ) from exc
