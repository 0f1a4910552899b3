"""The run record's life: started as running, the stage it is in, failed or crashed (a supervisor marks a
killed run), and the trend page that lists failed runs. The record is a :class:`llmops.reports.run.RunRecord`;
a completed run's summary replaces it (:mod:`llmops.runs.summary`)."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmops.config import Settings
from llmops.errors import DataContractError
from llmops.reports.run import RunRecord, RunState


def record_path(settings: Settings, flow: str, started: datetime) -> Path:
    """Where a run's record lives: ``<LLMOPS_HOME>/runs/<started>-<flow>.json``."""
    return settings.path("runs", f"{started.strftime('%Y%m%dT%H%M%S')}-{flow}.json")


def start_record(
    settings: Settings, *, flow: str, run_id: str, started: datetime, overrides: dict[str, Any] | None = None
) -> Path:
    """Record a run as running (with its process id, so a supervisor can mark it crashed); returns the path."""
    record = RunRecord(
        flow=flow,
        run_id=run_id,
        state="running",
        stage=None,
        pid=os.getpid(),
        started=started.isoformat(),
        overrides=overrides or {},
        stages=[],
    )
    return record.write(record_path(settings, flow, started))


def update_record(path: Path, **fields: Any) -> None:
    """Change fields of a run record (the stage a running run is in)."""
    if path.exists():
        RunRecord.read(path).updated(**fields).write(path)


def record_failure(
    settings: Settings, path: Path, *, state: RunState, stage: str | None, error: BaseException | str, render: bool = True
) -> None:
    """Record a failed or crashed run (stage, error) in its run record, the history and (``render``) the
    trend page. A process stopped by a signal passes ``render=False``: it has seconds left, and the
    supervisor renders the page (:func:`refresh_trend`) once it is gone."""
    if isinstance(error, str):
        message = error
    elif not isinstance(error, Exception) and not str(error):  # TerminationSignal, KeyboardInterrupt
        message = f"{type(error).__name__}: the run was stopped by a signal"
    else:
        message = f"{type(error).__name__}: {error}".rstrip(": ")
    failure = {"state": state, "stage": stage, "error": message[:2000], "finished": datetime.now(UTC).isoformat()}
    try:
        record = RunRecord.read(path).updated(**failure)
    except DataContractError:  # no record (or an unreadable one): the failure is recorded all the same
        record = RunRecord.model_validate({"flow": "run", "run_id": "", "started": failure["finished"]} | failure)
    record.write(path)
    try:  # the trend page lists the run too; a history store that cannot be reached must not hide the failure
        from llmops.monitoring.history import History, HistoryEntry
        from llmops.monitoring.trend import render_trend

        history = History(settings.history, endpoint_url=settings.s3_endpoint_url)
        where = f"-in-{stage}" if stage else ""
        history.append(
            HistoryEntry(  # the flow column names the failure; the entry key (a file name) stays plain
                run_id=record.run_id,
                flow=f"{record.flow}-{state}{where}",
                ts=datetime.now(UTC).isoformat(),
                data_rev=None,
                metrics={},
                drift={},
                trigger={"retrain": False, "reasons": [], "reason": message[:300]},
            )
        )
        if render:
            render_trend(history.entries(), settings.path("trend.html"))
    except Exception as exc:  # reported: the run record above already holds the failure
        print(f"the trend page was not updated with the {state} run: {type(exc).__name__}: {exc}")


def refresh_trend(settings: Settings) -> Path:
    """Render the trend page again from the history (a run stopped mid-render leaves it stale)."""
    from llmops.monitoring.history import History
    from llmops.monitoring.trend import render_trend

    history = History(settings.history, endpoint_url=settings.s3_endpoint_url)
    return render_trend(history.entries(), settings.path("trend.html"))


def run_records(settings: Settings) -> list[Path]:
    """The run records under ``<LLMOPS_HOME>/runs/``, oldest first (their names start with the start time)."""
    runs_dir = settings.path("runs")
    return sorted(p for p in runs_dir.glob("*.json") if not p.name.startswith(".")) if runs_dir.exists() else []


def mark_crashed(settings: Settings, pid: int, reason: str) -> list[Path]:
    """Mark the records of process ``pid`` still "running" as crashed (the process was killed); then
    :func:`refresh_trend`."""
    marked = []
    for path in run_records(settings):
        try:
            record = RunRecord.read(path)
        except DataContractError:
            continue
        if record.state == "running" and record.pid == pid:
            record_failure(settings, path, state="crashed", stage=record.stage, error=reason, render=False)
            if record.workspace:  # the killed run could not remove it (pre-redaction data inside)
                shutil.rmtree(record.workspace, ignore_errors=True)
            marked.append(path)
    return marked
