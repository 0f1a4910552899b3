"""A flow run's record ``<LLMOPS_HOME>/runs/<started>-<flow>.json``.

The run record is written through :meth:`RunRecord.write` only: as "running" when the run starts (with its
process id, so a supervisor can mark it crashed), updated with the stage it is in, then replaced by the run
summary when the run completes, or marked "failed"/"crashed" with its stage and error. ``llmops status``, the
supervisor and the run summary's markdown read it back through :meth:`RunRecord.read`. Keys that were never set
are not written, so each state keeps the shape it has always had on disk.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmops.errors import DataContractError
from llmops.reports.base import HandOff, first_error
from llmops.reports.drift import DriftReport
from llmops.reports.evaluation import GateDecision

RunState = Literal["running", "completed", "failed", "crashed"]


class StageOutcome(BaseModel):
    """One DVC stage of the run: whether it ran (DVC skips unchanged stages) and how long it took."""

    model_config = ConfigDict(extra="forbid")

    stage: str
    ran: bool
    seconds: float


class PublishSlot(BaseModel):
    """The serial publish section the run held (see :func:`llmops.isolation.serial`) and what it published."""

    model_config = ConfigDict(extra="forbid")

    limit: str | None = None  # the concurrency limit (or lock) name
    waited_s: float | None = None
    acquired: str | None = None
    stages: list[str] | None = None  # the stages whose dvc.lock entries the run published
    released: str | None = None  # absent when the summary is written inside the section (the monitor flow)


class ReportLinks(BaseModel):
    """Where the run's HTML reports are (absolute paths)."""

    model_config = ConfigDict(extra="forbid")

    drift_html: str
    loss_plot: str


class ModelOutcome(BaseModel):
    """The model the promotion gate judged in this run and the status it left it in."""

    model_config = ConfigDict(extra="forbid")

    model_id: str
    status: str


class RunRecord(HandOff):
    """One flow run: running (``stage``, ``pid``, ``workspace``), completed (the run summary: stages, metrics,
    drift, gate, report links) or failed/crashed (``stage`` and ``error``)."""

    model_config = ConfigDict(extra="forbid")

    flow: str
    run_id: str
    state: RunState
    stage: str | None = None  # the stage a running run is in, or the one a failed run failed in
    pid: int | None = None
    workspace: str | None = None
    error: str | None = None
    reason: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    publish: PublishSlot | None = None
    started: str
    finished: str | None = None
    data_rev: str | None = None
    stages: list[StageOutcome] = Field(default_factory=list)
    pushed_files: int | None = None
    skipped: str | None = None  # why training was skipped (the retrain policy)
    metrics: dict[str, dict[str, Any]] = Field(default_factory=dict)  # per stage: the stage's metrics file
    drift: DriftReport = DriftReport()  # the monitor stage's drift.json ({}: there was none)
    reports: ReportLinks | None = None
    model: ModelOutcome | None = None
    gate: GateDecision | None = None  # the promotion gate's decision on ``model``

    def ran(self) -> list[str]:
        """The stages that ran (not skipped by DVC), in order."""
        return [s.stage for s in self.stages if s.ran]

    def updated(self, **fields: Any) -> RunRecord:
        """This record with ``fields`` changed (validated: a bad value is a :class:`DataContractError`)."""
        try:
            return RunRecord.model_validate(self.as_dict() | fields)
        except ValidationError as exc:
            raise DataContractError(f"run {self.run_id}: not a valid change of its record ({first_error(exc)})") from exc

    def write(self, path: Path) -> Path:
        """Write the record to ``path`` atomically (readers never see half a record); the one writer."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.as_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        """Read a run record; a missing or malformed one is a :class:`DataContractError` naming it."""
        return cls.load(path, what="run record", missing="no run record there")
