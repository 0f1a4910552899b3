"""The monitor step: every drift signal of a batch in one ``drift.json``, then history, triggers, alerts.

:func:`monitor_batch` is what the ``monitor`` stage runs; :func:`observe_run` is what a flow runs after
its stages: append the run to the history, decide whether to retrain, render the trend page, notify.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmops.config import MonitorParams, Settings
from llmops.index.embed import Embedder
from llmops.monitoring.drift import drift_report
from llmops.monitoring.history import History, HistoryEntry, drift_summary, key_metrics
from llmops.monitoring.triggers import TriggerDecision, decide_retrain, notify, slack_payload
from llmops.records import Conversation, Document, FeedbackEvent


def monitor_batch(
    reference: Sequence[Conversation],
    current: Sequence[Conversation],
    cfg: MonitorParams,
    out_dir: Path,
    *,
    feedback: Sequence[FeedbackEvent] = (),
    reference_documents: Sequence[Document] = (),
    current_documents: Sequence[Document] = (),
    embedder: Embedder | None = None,
) -> dict[str, Any]:
    """Conversation drift (+ query embeddings), document embedding drift and production quality.

    Writes ``report.html`` (conversations), ``quality.html`` (generation log) and ``drift.json``.
    """
    body = drift_report(reference, current, cfg, out_dir, embedder=embedder).as_dict()
    if embedder is not None and cfg.embedding_drift and reference_documents and current_documents:
        from llmops.monitoring.embeddings import embedding_drift

        docs = embedding_drift([d.text for d in reference_documents], [d.text for d in current_documents], embedder, cfg)
        body["embeddings"]["documents"] = docs
        if docs["detected"]:
            body["drifted_signals"].append("document_embeddings")
            body["drift_detected"] = True
    if feedback:
        from llmops.monitoring.quality import quality_report

        body["quality"] = quality_report(feedback, cfg, out_dir).as_dict()
    body["thresholds"] = cfg.model_dump(exclude={"reference", "reference_documents"})
    (out_dir / "drift.json").write_text(json.dumps(body, indent=2, default=str) + "\n", encoding="utf-8")
    return body


def observe_run(
    history: History,
    cfg: MonitorParams,
    *,
    flow: str,
    run_id: str,
    drift: dict[str, Any],
    evaluation: dict[str, Any] | None = None,
    data_rev: str | None = None,
    reports: dict[str, Path] | None = None,
    trend_page: Path | None = None,
    webhook: str | None = None,
) -> tuple[HistoryEntry, TriggerDecision]:
    """Decide on retraining against the previous run, append this run, refresh the trend page, notify.

    ``evaluation`` is metrics.json of a run that evaluated a model (nightly, retrain); a monitor-only
    run passes None so the history does not repeat old metrics as new ones.
    """
    metrics = key_metrics(evaluation or {})
    previous = next((e for e in reversed(history.entries()) if e.metrics), None)
    decision = decide_retrain(drift, cfg, metrics=metrics, previous_metrics=previous.metrics if previous else None)
    entry = HistoryEntry(
        run_id=run_id,
        flow=flow,
        ts=datetime.now(UTC).isoformat(),
        data_rev=data_rev,
        metrics=metrics,
        drift=drift_summary(drift) if drift else {},
        trigger=decision.as_dict(),
    )
    history.append(entry, reports)
    if trend_page is not None:
        from llmops.monitoring.trend import render_trend

        render_trend(history.entries(), trend_page)
    if webhook and (decision.retrain or drift.get("drift_detected")):
        url = trend_page.resolve().as_uri() if trend_page is not None else None
        entry.trigger["notified"] = notify(webhook, slack_payload(decision, flow=flow, run_id=run_id, report_url=url))
    return entry, decision


def observe_workspace(
    project_dir: Path, settings: Settings, cfg: MonitorParams, *, flow: str, run_id: str, evaluated: bool, monitored: bool
) -> dict[str, Any]:
    """:func:`observe_run` on a DVC workspace's outputs (drift.json, metrics.json); what a flow needs back.

    ``evaluated``/``monitored``: the run produced metrics.json / drift.json (others are left out: they
    are an earlier run's). ``launch`` is True when a trigger fired and ``retrain_on_trigger`` allows acting on it.
    """
    from llmops import workspace as ws
    from llmops.versioning import data_revision

    def read(path: Path) -> dict[str, Any]:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    drift_dir = project_dir / ws.DRIFT_DIR
    entry, decision = observe_run(
        History(settings.history, endpoint_url=settings.s3_endpoint_url),
        cfg,
        flow=flow,
        run_id=run_id,
        drift=read(drift_dir / "drift.json") if monitored else {},
        evaluation=read(project_dir / ws.EVAL_METRICS) if evaluated else None,
        data_rev=data_revision(project_dir),
        reports={"drift_html": drift_dir / "report.html", "quality_html": drift_dir / "quality.html"} if monitored else None,
        trend_page=settings.path("trend.html"),
        webhook=settings.notify_webhook,
    )
    return {
        **decision.as_dict(),
        "launch": decision.retrain and cfg.retrain_on_trigger,
        "deployment": cfg.retrain_deployment,
        "trend_page": str(settings.path("trend.html")),
        "history_entry": entry.key,
        "notified": entry.trigger.get("notified"),
    }
