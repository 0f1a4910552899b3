"""The monitor step: every drift signal of a batch in one ``drift.json``, then history, triggers, alerts.

:func:`monitor_batch` is what the ``monitor`` stage runs; :func:`observe_run` is what a flow runs after
its stages: append the run to the history, decide whether to retrain, render the trend page, notify.
"""

from __future__ import annotations

import hashlib
import json
import shutil
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
from llmops.monitoring.embeddings import CachedEmbedder
from llmops.monitoring.history import History, HistoryEntry, drift_summary, key_metrics
from llmops.monitoring.triggers import TriggerDecision, decide_retrain, notify, slack_payload
from llmops.records import Conversation, Document, FeedbackEvent
from llmops.reports.drift import DRIFT_REPORT, DriftReport, DriftWindow, EmbeddingDrift, QualityReport
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


def skipped_drift(reason: str, current_rows: int, reference_rows: int) -> DriftReport:
    """drift.json's conversation part when the current window is too small to test (no drift claimed)."""
    return DriftReport(
        skipped=reason,
        drift_detected=False,
        drift_share=None,
        drifted_signals=[],
        new_vocab_share=None,
        current_rows=current_rows,
        reference_rows=reference_rows,
        embeddings={},
    )


def _digest(*parts: object) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()


def _memo(state_dir: Path | None, name: str, key: str) -> dict[str, Any] | None:
    """A check's result from an earlier run whose inputs had the same ``key`` (None: compute it)."""
    path = state_dir / f"{name}.json" if state_dir is not None else None
    if path is None or not path.exists():
        return None
    stored = json.loads(path.read_text(encoding="utf-8"))
    return stored["result"] if stored.get("key") == key else None


def _remember(state_dir: Path | None, name: str, key: str, result: dict[str, Any]) -> None:
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / f"{name}.json").write_text(json.dumps({"key": key, "result": result}) + "\n", encoding="utf-8")


def embedder_space(name: str) -> str:
    """The vector space of the index embedder ``name`` without loading it: the name, and for a local model
    the size and modification time of each of its files (a replaced model is a new space)."""
    if name.startswith("openai:"):
        return name
    from llmops.index.embed import DEFAULT_EMBEDDER, packaged_minilm_path

    path = packaged_minilm_path() if name == DEFAULT_EMBEDDER else Path(name)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    return _digest(name, [(str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in files])


def _space(embedder: Embedder) -> str:
    return embedder.space if isinstance(embedder, CachedEmbedder) else embedder.embedder_id


def document_drift(
    reference: Sequence[Document], current: Sequence[Document], embedder: Embedder, cfg: MonitorParams, state_dir: Path | None
) -> EmbeddingDrift:
    """Embedding drift of the knowledge base against the reference documents. It does not depend on the
    conversation batch: with ``state_dir`` the result is kept with a hash of both document sets, the embedder's
    space and the method's params, and an unchanged knowledge base is not embedded or tested again."""
    ref_texts, cur_texts = [d.text for d in reference], [d.text for d in current]
    params = cfg.model_dump(include={"embedding_method", "embedding_threshold", "embedding_sample"})
    key = _digest("documents", _space(embedder), params, ref_texts, cur_texts)
    if (known := _memo(state_dir, "documents", key)) is not None:
        return EmbeddingDrift.model_validate(known)
    from llmops.monitoring.embeddings import embedding_drift

    result = embedding_drift(ref_texts, cur_texts, embedder, cfg)
    _remember(state_dir, "documents", key, result.model_dump(mode="json", exclude_unset=True))
    return result


def production_quality(
    feedback: Sequence[FeedbackEvent], cfg: MonitorParams, out_dir: Path, state_dir: Path | None
) -> QualityReport:
    """:func:`llmops.monitoring.quality.quality_report` (writes ``quality.html``). It depends on the generation
    log only: with ``state_dir`` an unchanged log and params reuse the last result and its HTML."""
    key = _digest("quality", cfg.model_dump(mode="json"), [e.model_dump(mode="json") for e in feedback])
    html = state_dir / "quality.html" if state_dir is not None else None
    known = _memo(state_dir, "quality", key)
    if known is not None and html is not None and (html.exists() or not known.get("columns")):
        if known.get("columns"):  # Evidently ran: its page goes with the result
            out_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(html, out_dir / "quality.html")
        return QualityReport.model_validate(known)
    from llmops.monitoring.quality import quality_report

    result = quality_report(feedback, cfg, out_dir)
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        if result.columns:
            shutil.copyfile(out_dir / "quality.html", html)
        else:
            html.unlink(missing_ok=True)
        _remember(state_dir, "quality", key, result.model_dump(mode="json", exclude_unset=True))
    return result


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
    state_dir: Path | None = None,
) -> DriftReport:
    """Conversation drift (+ query embeddings), document embedding drift and production quality.

    Fewer than ``cfg.min_current_rows`` current conversations: the conversation checks are skipped (the
    reason in ``skipped``), the document and quality checks still run. ``window``: how the current
    conversations were chosen (:class:`Window`), recorded in drift.json. ``state_dir``: where the checks
    that do not depend on the batch (documents, quality) keep their last result (``$LLMOPS_HOME/monitor``).

    Writes ``report.html`` (conversations), ``quality.html`` (generation log) and ``drift.json``.
    """
    if len(current) < cfg.min_current_rows:
        reason = f"skipped: {len(current)} current conversations < monitor.min_current_rows {cfg.min_current_rows}"
        body = skipped_drift(reason, len(current), len(reference))
        out_dir.mkdir(parents=True, exist_ok=True)
    else:
        body = drift_report(reference, current, cfg, out_dir, embedder=embedder, write_json=False)
    if embedder is not None and cfg.embedding_drift and reference_documents and current_documents:
        docs = document_drift(reference_documents, current_documents, embedder, cfg, state_dir)
        body.embeddings = {**body.embeddings, "documents": docs}
        if docs.detected:
            body.flag("document_embeddings")
    if feedback:
        body.quality = production_quality(feedback, cfg, out_dir, state_dir)
    if window is not None:
        body.window = DriftWindow.model_validate(window)
    body.thresholds = cfg.model_dump(mode="json", exclude={"reference", "reference_documents"})
    body.write(out_dir)
    return body


def observe_run(
    history: History,
    cfg: MonitorParams,
    *,
    flow: str,
    run_id: str,
    drift: DriftReport | None,
    evaluation: dict[str, Any] | None = None,
    data_rev: str | None = None,
    reports: dict[str, Path] | None = None,
    trend_page: Path | None = None,
    webhook: str | None = None,
) -> tuple[HistoryEntry, TriggerDecision]:
    """Decide on retraining against the previous run, append this run, refresh the trend page, notify.

    ``evaluation`` is metrics.json of a run that evaluated a model (nightly, retrain); a monitor-only
    run passes None so the history does not repeat old metrics as new ones. ``drift``: this run's drift.json
    (None: the run did not monitor).
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
        drift=drift_summary(drift) if drift is not None else {},
        trigger=decision.as_dict(),
    )
    history.append(entry, reports)
    if trend_page is not None:
        from llmops.monitoring.trend import render_trend

        render_trend(history.entries(), trend_page)
    if webhook and (decision.retrain or (drift is not None and drift.drift_detected)):
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
    from llmops.reports.evaluation import EvaluationReport
    from llmops.versioning import data_revision

    drift_dir = project_dir / ws.DRIFT_DIR
    metrics = project_dir / ws.EVAL_METRICS
    evaluation = EvaluationReport.read(metrics) if evaluated and metrics.exists() else None
    entry, decision = observe_run(
        History.from_settings(settings),
        cfg,
        flow=flow,
        run_id=run_id,
        drift=DriftReport.read(drift_dir) if monitored and (drift_dir / DRIFT_REPORT).exists() else None,
        evaluation=evaluation.as_dict() if evaluation is not None else None,
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
