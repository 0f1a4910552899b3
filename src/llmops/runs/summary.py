"""A completed run's summary: what ran, counts, metrics, drift, the gate's decision and report links; written as
the run's record (:class:`llmops.reports.run.RunRecord`, with a copy of dvc.lock) and rendered as markdown."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmops import workspace as ws
from llmops.config import Settings
from llmops.finetune.registry import ModelRecord
from llmops.jsonl import read_json
from llmops.reports.drift import DRIFT_REPORT, DriftReport
from llmops.reports.evaluation import GateDecision
from llmops.reports.run import ModelOutcome, PublishSlot, ReportLinks, RunRecord, StageOutcome
from llmops.runs.records import record_path
from llmops.versioning import StageRun, data_revision


def write_run_summary(
    project_dir: Path,
    settings: Settings,
    *,
    flow: str,
    run_id: str,
    started: datetime,
    stages: Sequence[StageRun],
    pushed: int | None,
    model: ModelRecord | None = None,
    decision: GateDecision | None = None,
    reason: str | None = None,
    skipped: str | None = None,
    overrides: dict[str, Any] | None = None,
    publish: PublishSlot | None = None,
) -> RunRecord:
    """Persist what the run did under ``<LLMOPS_HOME>/runs/`` (with a copy of dvc.lock) and return it."""
    summary = RunRecord(
        flow=flow,
        run_id=run_id,
        state="completed",
        reason=reason,
        overrides=overrides or {},
        publish=publish.model_copy() if publish is not None else PublishSlot(),  # as it is now (still held or released)
        started=started.isoformat(),
        finished=datetime.now(UTC).isoformat(),
        data_rev=data_revision(project_dir),
        stages=[StageOutcome(stage=s.stage, ran=s.ran, seconds=s.seconds) for s in stages],
        pushed_files=pushed,
        skipped=skipped,
        metrics={st: read_json(project_dir / ws.stage_metrics(st)) for st in ws.STAGES if st != "monitor"},
        drift=DriftReport.read(drift) if (drift := project_dir / ws.DRIFT_DIR / DRIFT_REPORT).exists() else DriftReport(),
        reports=ReportLinks(
            drift_html=str((project_dir / ws.DRIFT_DIR / "report.html").resolve()),
            loss_plot=str((project_dir / ws.LOSS_PLOT).resolve()),
        ),
    )
    if model is not None:
        summary.model = ModelOutcome(model_id=model.model_id, status=model.status)
    if decision is not None:
        summary.gate = decision
    path = summary.write(record_path(settings, flow, started))
    if (project_dir / "dvc.lock").exists():
        shutil.copyfile(project_dir / "dvc.lock", path.with_suffix(".dvc.lock"))
    return summary


def summary_markdown(summary: RunRecord) -> str:
    """The run artifact: what ran, what was skipped, counts, metrics, gate and report links."""
    lines = [f"# {summary.flow} run `{summary.run_id}`", ""]
    if summary.reason:
        lines += [f"**Reason:** {summary.reason}", ""]
    if summary.skipped:
        lines += [f"**Training skipped:** {summary.skipped}", ""]
    lines += [
        f"**Data revision:** `{summary.data_rev}` · pushed files: {summary.pushed_files}",
        "",
        "| stage | status | seconds |",
        "|---|---|---|",
    ]
    lines += [f"| {s.stage} | {'ran' if s.ran else 'skipped (unchanged)'} | {s.seconds} |" for s in summary.stages]
    ingest = summary.metrics.get("ingest", {})
    if ingest:
        lines += ["", "| source | in | out | quarantined |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['in']} | {v['out']} | {v['quarantined']} |" for k, v in ingest.items()]
    ev = summary.metrics.get("evaluate", {})
    rows = [f"| {group}.{k} | {v} |" for group in ("retrieval", "answers") for k, v in ev.get(group, {}).items()]
    rows += [f"| {name} | missing (could not be computed) |" for name in ev.get("missing", [])]
    if rows:  # no header over an empty table (a run whose evaluation left no metrics)
        lines += ["", "| metric | value |", "|---|---|", *rows]
    if summary.gate is not None and summary.model is not None:
        not_gated = summary.gate.evidence.get("not_gated")  # an unchanged model the gate did not judge again
        verdict = f"not gated again: {not_gated}" if not_gated else "promoted to champion" if summary.gate.promote else "rejected"
        lines += ["", f"**Model** `{summary.model.model_id}`: {verdict}"]
        lines += [f"- {r}" for r in summary.gate.reasons]
    drift = summary.drift
    if drift.model_fields_set:  # the run had a drift report
        lines += ["", f"**Drift detected:** {drift.drift_detected} (drifted: {', '.join(drift.drifted_signals) or 'none'})"]
    if summary.reports is not None:
        lines += [
            "",
            f"Reports: [drift report](file://{summary.reports.drift_html}) · [loss curve](file://{summary.reports.loss_plot})",
        ]
    return "\n".join(lines)
