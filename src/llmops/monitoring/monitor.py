"""The monitor step: every drift signal of a batch in one ``drift.json``, then history, triggers, alerts.

:func:`monitor_batch` is what the ``monitor`` stage runs; :func:`observe_run` is what a flow runs after
its stages: append the run to the history, decide whether to retrain, render the trend page, notify.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from llmops.config import MonitorParams, Settings
from llmops.data.incremental import batched, iter_jsonl
from llmops.index.embed import Embedder
from llmops.monitoring.drift import drift_report
from llmops.monitoring.history import History, HistoryEntry, drift_summary, key_metrics
from llmops.monitoring.triggers import TriggerDecision, decide_retrain, notify, slack_payload
from llmops.records import Conversation, Document, FeedbackEvent
from llmops.reports.observe import ObserveResult


@dataclass
class Window:
    """The monitor's current window: conversations that arrived since the last monitored run (first run:
    the archive's last ``current_days`` days). ``_keys``/``_parts``: what to mark as seen once monitored."""

    rows: list[Conversation]
    basis: str
    changed_partitions: int = 0
    _keys: list[str] = field(default_factory=list, repr=False)
    _parts: dict[str, str] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        stamps = [c.created_at for c in self.rows]
        return {
            "basis": self.basis,
            "rows": len(self.rows),
            "changed_partitions": self.changed_partitions,
            "oldest": min(stamps).isoformat() if stamps else None,
            "newest": max(stamps).isoformat() if stamps else None,
        }


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _seen_db(state: Path) -> sqlite3.Connection:
    state.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(state)
    db.execute("CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY)")
    db.execute("CREATE TABLE IF NOT EXISTS parts (name TEXT PRIMARY KEY, md5 TEXT)")
    return db


def current_window(directory: Path, state: Path, cfg: MonitorParams) -> Window:
    """The conversations of the day partitions in ``directory`` that no monitored run has seen.

    ``state`` (SQLite) keeps the md5 of each partition and a hash of each conversation line at the last
    monitored run: unchanged partitions are not read at all, so cost and memory follow the new batch,
    not the archive. Without state (first run) the window is the last ``monitor.current_days`` days of
    ``created_at``, and every conversation is marked as seen once it is monitored.
    """
    from llmops.data.incremental import batched, file_digest, iter_lines, partitions, record_key

    parts = partitions(directory)
    db = _seen_db(state)
    try:
        known = dict(db.execute("SELECT name, md5 FROM parts").fetchall())
        first = not known  # no monitored run yet (a skipped first window leaves nothing marked either)
        window = Window([], "since the last monitored run")
        since: datetime | None = None
        if first:
            newest = max((_aware(c.created_at) for c in iter_jsonl(parts[-1], Conversation)), default=None) if parts else None
            since = newest - timedelta(days=cfg.current_days) if newest else None
            window.basis = f"the last {cfg.current_days} days of the archive (first monitored run)"
        for part in parts:
            md5 = file_digest(part)
            window._parts[part.stem] = md5
            if known.get(part.stem) == md5:
                continue
            window.changed_partitions += 1
            for batch in batched(iter_lines(part), 1000):
                keys = [record_key("monitor", line) for _, line in batch]
                marks = ",".join("?" * len(keys))
                seen = {k for (k,) in db.execute(f"SELECT key FROM seen WHERE key IN ({marks})", keys)}
                for key, (_, line) in zip(keys, batch, strict=True):
                    if key in seen:
                        continue
                    window._keys.append(key)
                    conv = Conversation.model_validate_json(line)
                    if not first or (since is not None and _aware(conv.created_at) > since):
                        window.rows.append(conv)
        return window
    finally:
        db.close()


def advance_watermark(state: Path, window: Window) -> None:
    """Mark the window's conversations (and, on a first run, the whole archive) as seen: the next window
    starts after them. Called only when the window was monitored, so a skipped batch is seen next time."""
    db = _seen_db(state)
    try:
        for chunk in batched(window._keys, 1000):
            db.executemany("INSERT OR IGNORE INTO seen (key) VALUES (?)", ((k,) for k in chunk))
        db.execute("DELETE FROM parts")
        db.executemany("INSERT INTO parts (name, md5) VALUES (?, ?)", window._parts.items())
        db.commit()
    finally:
        db.close()


def skipped_drift(reason: str, current_rows: int, reference_rows: int) -> dict[str, Any]:
    """drift.json's conversation part when the current window is too small to test (no drift claimed)."""
    return {
        "skipped": reason,
        "drift_detected": False,
        "drift_share": None,
        "drifted_signals": [],
        "new_vocab_share": None,
        "current_rows": current_rows,
        "reference_rows": reference_rows,
        "embeddings": {},
    }


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
    window: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Conversation drift (+ query embeddings), document embedding drift and production quality.

    Fewer than ``cfg.min_current_rows`` current conversations: the conversation checks are skipped (the
    reason in ``skipped``), the document and quality checks still run. ``window``: how the current
    conversations were chosen (:class:`Window`), recorded in drift.json.

    Writes ``report.html`` (conversations), ``quality.html`` (generation log) and ``drift.json``.
    """
    if len(current) < cfg.min_current_rows:
        reason = f"skipped: {len(current)} current conversations < monitor.min_current_rows {cfg.min_current_rows}"
        body = skipped_drift(reason, len(current), len(reference))
        out_dir.mkdir(parents=True, exist_ok=True)
    else:
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
    if window is not None:
        body["window"] = window
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
) -> ObserveResult:
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
        History.from_settings(settings),
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
    return ObserveResult(
        retrain=decision.retrain,
        reasons=decision.reasons,
        reason=decision.reason,
        launch=decision.retrain and cfg.retrain_on_trigger,
        deployment=cfg.retrain_deployment,
        trend_page=str(settings.path("trend.html")),
        history_entry=entry.key,
        notified=entry.trigger.get("notified"),
    )
