"""What a pipeline run did: stage decisions, model promotion, run summaries and ``llmops status``.

Flows call these functions; they hold the logic so flows only compose.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmops import workspace as ws
from llmops.config import Params, Settings
from llmops.evaluation.gate import GateDecision, decide, load_scores
from llmops.finetune.registry import ModelRecord, Registry, params_hash
from llmops.finetune.triggers import RetrainDecision, data_until, recipe_reference, should_retrain
from llmops.storage import is_remote
from llmops.versioning import StageRun, data_revision, read_lock


def forced_stages(params: Params, settings: Settings, project_dir: Path) -> set[str]:
    """Stages DVC cannot see are stale: remote sources (S3 objects), new lines in the generation log,
    and an index missing from this Chroma."""
    from llmops.feedback.log import has_new_data, load_watermark

    forced = set()
    if has_new_data(settings.path("generation-log"), load_watermark(settings.path("feedback", "watermark.json"))):
        forced.add("feedback")
    if any(is_remote(getattr(params.ingest, k)) for k in ws.KINDS):
        forced.add("ingest")
    if (project_dir / ws.INDEX_MANIFEST).exists() and not index_in_sync(params, settings, project_dir):
        forced.add("index")
    return forced


def index_in_sync(params: Params, settings: Settings, project_dir: Path) -> bool:
    """Does the live Chroma collection hold exactly the chunks of the index manifest?"""
    from llmops.errors import IndexStateError
    from llmops.index.store import chroma_client
    from llmops.index.versions import serving_collection

    with (project_dir / ws.INDEX_MANIFEST).open(encoding="utf-8") as fh:
        wanted = {json.loads(line)["chunk_id"] for line in fh}
    try:
        collection = serving_collection(chroma_client(settings), params.index.collection)
    except IndexStateError:
        return False
    if collection is None:
        return False
    return collection.count() == len(wanted) and set(collection.get(include=[])["ids"]) == wanted


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def record_model(
    project_dir: Path,
    settings: Settings,
    params: Params,
    *,
    reason: str,
    flow_run_id: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[ModelRecord, GateDecision]:
    """Register the workspace's evaluated adapter and let the gate decide whether it becomes champion.

    The champion is made sure of first (the base model, evaluated and registered, when there is none; its
    scores recomputed when the gate set, index or decoding changed), so only the challenger is generated
    each night. With ``gate.require_approval`` a model the gate passes becomes ``pending`` (see
    :func:`apply_approval`), not champion.
    """
    from llmops.evaluation.baseline import ensure_champion, evaluation_key

    registry = Registry.from_settings(settings)
    training = _read_json(project_dir / ws.ADAPTER / "training.json")
    current = registry.champion()
    if current is not None and current.model_id == training["model_id"]:
        return current, GateDecision(True, [f"{current.model_id} is already the champion (unchanged model)"])
    judged = registry.get(training["model_id"])
    if judged is not None:  # an unchanged adapter the gate (or a person: promote/rollback) already decided on
        return judged, GateDecision(
            False, [f"{judged.model_id} was already judged ({judged.status}); not re-gated: `llmops models promote` overrides"]
        )
    champion = ensure_champion(registry, project_dir, settings, params)
    evaluation = _read_json(project_dir / ws.EVAL_METRICS)
    scores = load_scores(project_dir / ws.EVAL_SAMPLES, params.gate.score_field)
    record = ModelRecord(
        model_id=training["model_id"],
        base_model=training["base_model"],
        backend=training.get("backend", params.finetune.backend),
        data_rev=data_revision(project_dir),
        params_hash=params_hash(params.finetune.model_dump()),
        reason=reason,
        training={k: v for k, v in training.items() if k not in {"train_loss", "val_loss"}}
        | {"data_until": data_until(project_dir / ws.TRAINSET / "provenance.jsonl")}
        | ({"overrides": overrides} if overrides else {}),  # the run's params overrides: lineage
        evaluation=evaluation,
        eval_scores=scores,
        eval_key=evaluation_key(project_dir, params),
    )
    record = registry.register(record, project_dir / ws.ADAPTER)
    decision = decide(
        evaluation,
        champion.evaluation,
        params.gate,
        challenger_scores=scores,
        champion_scores=champion.eval_scores,
        seed=params.base.seed,
    )
    decision.evidence["champion_id"] = champion.model_id
    if flow_run_id:
        decision.evidence["flow_run_id"] = flow_run_id
    status = "rejected"
    if decision.promote:
        status = "pending" if params.gate.require_approval else "champion"
        if status == "pending":
            decision.reasons.append("gate passed; waiting for approval: `llmops models approve|reject " + record.model_id + "`")
    record = registry.set_status(record.model_id, status, decision.reasons, evidence=decision.evidence)  # type: ignore[arg-type]
    return record, decision


def apply_approval(settings: Settings, model_id: str, *, approve: bool, reason: str) -> ModelRecord:
    """A reviewer's verdict on a pending model (from the paused flow's form or the CLI); a model already
    decided (the CLI answered first) is returned as it is."""
    registry = Registry.from_settings(settings)
    record = registry.get(model_id)
    if record is None or record.status != "pending":
        return record  # type: ignore[return-value]
    return registry.decide_pending(model_id, approve=approve, reason=reason)


def resume_approval(model: ModelRecord, *, approve: bool, reason: str) -> str:
    """Resume the flow run paused on ``model`` (its id is in the gate evidence) with the reviewer's verdict;
    returns what happened, for the CLI to print. The registry is already updated, so a flow that cannot be
    reached (finished, timed out, no Prefect API) changes nothing."""
    run_id = model.gate_evidence.get("flow_run_id")
    if not run_id or run_id == "local":
        return ""
    from uuid import UUID

    from prefect.flow_runs import resume_flow_run

    try:
        resume_flow_run(UUID(run_id), run_input={"approve": approve, "reason": reason})
    except Exception as exc:  # not paused any more, unreachable API ...: the registry verdict stands either way
        return f"flow run {run_id} was not resumed ({type(exc).__name__}: {exc}); the registry holds the verdict"
    return f"resumed flow run {run_id}"


def gate_markdown(model: ModelRecord, decision: GateDecision) -> str:
    """The gate report a reviewer reads before approving: decision, reasons and the paired evidence."""
    ev = decision.evidence
    lines = [f"# Gate report: `{model.model_id}` ({model.status})", ""]
    lines += [f"- {r}" for r in decision.reasons]
    if "paired_questions" in ev:
        lines += [
            "",
            "| champion | paired questions | ties | mean diff | CI | p | min. detectable effect |",
            "|---|---|---|---|---|---|---|",
            f"| {ev.get('champion_id')} | {ev['paired_questions']} | {ev.get('ties', '')} | {ev.get('mean_diff', '')} | "
            f"{ev.get('ci', '')} | {ev.get('p_value', '')} | {ev.get('mde', '')} |",
        ]
    return "\n".join(lines)


def retrain_check(project_dir: Path, settings: Settings, params: Params, *, force: bool = False) -> RetrainDecision:
    """Should this retrain train? (enough new examples since the champion's data, changed params, or forced)."""
    registry = Registry.from_settings(settings)
    champion = registry.champion()
    reference = recipe_reference(registry.models(), champion) if champion is not None else None
    return should_retrain(
        project_dir / ws.TRAINSET / "provenance.jsonl",
        reference or champion,
        params_hash(params.finetune.model_dump()),
        params.retrain,
        force=force,
    )


def record_path(settings: Settings, flow: str, started: datetime) -> Path:
    """Where a run's record lives: ``<LLMOPS_HOME>/runs/<started>-<flow>.json``."""
    return settings.path("runs", f"{started.strftime('%Y%m%dT%H%M%S')}-{flow}.json")


def _write_record(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # readers (`llmops status`) never see half a record


def start_record(
    settings: Settings, *, flow: str, run_id: str, started: datetime, overrides: dict[str, Any] | None = None
) -> Path:
    """Record a run as running (with its process id, so a supervisor can mark it crashed); returns the path."""
    path = record_path(settings, flow, started)
    _write_record(
        path,
        {
            "flow": flow,
            "run_id": run_id,
            "state": "running",
            "stage": None,
            "pid": os.getpid(),
            "started": started.isoformat(),
            "overrides": overrides or {},
            "stages": [],
        },
    )
    return path


def update_record(path: Path, **fields: Any) -> None:
    """Change fields of a run record (the stage a running run is in)."""
    if path.exists():
        _write_record(path, json.loads(path.read_text(encoding="utf-8")) | fields)


def record_failure(
    settings: Settings, path: Path, *, state: str, stage: str | None, error: BaseException | str, render: bool = True
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
    record = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    record |= {"state": state, "stage": stage, "error": message[:2000], "finished": datetime.now(UTC).isoformat()}
    _write_record(path, record)
    try:  # the trend page lists the run too; a history store that cannot be reached must not hide the failure
        from llmops.monitoring.history import History, HistoryEntry
        from llmops.monitoring.trend import render_trend

        history = History(settings.history, endpoint_url=settings.s3_endpoint_url)
        where = f"-in-{stage}" if stage else ""
        history.append(
            HistoryEntry(  # the flow column names the failure; the entry key (a file name) stays plain
                run_id=str(record.get("run_id", "")),
                flow=f"{record.get('flow', 'run')}-{state}{where}",
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


def mark_crashed(settings: Settings, pid: int, reason: str) -> list[Path]:
    """Mark the records of process ``pid`` still "running" as crashed (the process was killed); then
    :func:`refresh_trend`."""
    runs_dir = settings.path("runs")
    marked = []
    for path in sorted(runs_dir.glob("*.json")) if runs_dir.exists() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if record.get("state") == "running" and record.get("pid") == pid:
            record_failure(settings, path, state="crashed", stage=record.get("stage"), error=reason, render=False)
            if record.get("workspace"):  # the killed run could not remove it (pre-redaction data inside)
                shutil.rmtree(record["workspace"], ignore_errors=True)
            marked.append(path)
    return marked


def write_run_summary(
    project_dir: Path,
    settings: Settings,
    *,
    flow: str,
    run_id: str,
    started: datetime,
    stages: list[StageRun],
    pushed: int | None,
    model: ModelRecord | None = None,
    decision: GateDecision | None = None,
    reason: str | None = None,
    skipped: str | None = None,
    overrides: dict[str, Any] | None = None,
    publish: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Persist what the run did under ``<LLMOPS_HOME>/runs/`` (with a copy of dvc.lock) and return it."""
    summary: dict[str, Any] = {
        "flow": flow,
        "run_id": run_id,
        "state": "completed",
        "reason": reason,
        "overrides": overrides or {},
        "publish": publish or {},
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "data_rev": data_revision(project_dir),
        "stages": [{"stage": s.stage, "ran": s.ran, "seconds": s.seconds} for s in stages],
        "pushed_files": pushed,
        "skipped": skipped,
        "metrics": {st: _read_json(project_dir / ws.stage_metrics(st)) for st in ws.STAGES if st != "monitor"},
        "drift": _read_json(project_dir / ws.DRIFT_DIR / "drift.json"),
        "reports": {
            "drift_html": str((project_dir / ws.DRIFT_DIR / "report.html").resolve()),
            "loss_plot": str((project_dir / ws.LOSS_PLOT).resolve()),
        },
    }
    if model is not None:
        summary["model"] = {"model_id": model.model_id, "status": model.status}
    if decision is not None:
        summary["gate"] = decision.as_dict()
    path = record_path(settings, flow, started)
    _write_record(path, summary)
    if (project_dir / "dvc.lock").exists():
        shutil.copyfile(project_dir / "dvc.lock", path.with_suffix(".dvc.lock"))
    return summary


def summary_markdown(summary: dict[str, Any]) -> str:
    """The run artifact: what ran, what was skipped, counts, metrics, gate and report links."""
    lines = [f"# {summary['flow']} run `{summary['run_id']}`", ""]
    if summary.get("reason"):
        lines += [f"**Reason:** {summary['reason']}", ""]
    if summary.get("skipped"):
        lines += [f"**Training skipped:** {summary['skipped']}", ""]
    lines += [
        f"**Data revision:** `{summary['data_rev']}` · pushed files: {summary['pushed_files']}",
        "",
        "| stage | status | seconds |",
        "|---|---|---|",
    ]
    lines += [f"| {s['stage']} | {'ran' if s['ran'] else 'skipped (unchanged)'} | {s['seconds']} |" for s in summary["stages"]]
    m = summary["metrics"]
    ingest = m.get("ingest", {})
    if ingest:
        lines += ["", "| source | in | out | quarantined |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['in']} | {v['out']} | {v['quarantined']} |" for k, v in ingest.items()]
    ev = m.get("evaluate", {})
    if ev:
        lines += ["", "| metric | value |", "|---|---|"]
        for group in ("retrieval", "answers"):
            lines += [f"| {group}.{k} | {v} |" for k, v in ev.get(group, {}).items()]
        lines += [f"| {name} | missing (could not be computed) |" for name in ev.get("missing", [])]
    if "gate" in summary:
        verdict = "promoted to champion" if summary["gate"]["promote"] else "rejected"
        lines += ["", f"**Model** `{summary['model']['model_id']}`: {verdict}"]
        lines += [f"- {r}" for r in summary["gate"]["reasons"]]
    drift = summary.get("drift") or {}
    if drift:
        lines += [
            "",
            f"**Drift detected:** {drift.get('drift_detected')} "
            f"(drifted: {', '.join(drift.get('drifted_signals', [])) or 'none'})",
        ]
    lines += [
        "",
        f"Reports: [drift report](file://{summary['reports']['drift_html']}) · "
        f"[loss curve](file://{summary['reports']['loss_plot']})",
    ]
    return "\n".join(lines)


def _serving_index(project_dir: Path, settings: Settings) -> str | None:
    """The collection version the serving alias points at (what answers are retrieved from), or why not."""
    from llmops.config import load_params
    from llmops.index.store import chroma_client
    from llmops.index.versions import read_alias

    if not (project_dir / "params.yaml").exists():
        return None
    if not settings.chroma_url and not settings.chroma_dir.exists():
        return None  # nothing was ever indexed here (and `status` must not create the store)
    try:
        collection = load_params(project_dir / "params.yaml").index.collection
        return read_alias(chroma_client(settings), collection).serving
    except Exception as exc:  # an unreachable server (httpx, chromadb errors) must not break `status`
        return f"unknown ({type(exc).__name__}: {exc})"


_STATUS_KEYS = {"flow", "run_id", "state", "stage", "error", "started", "finished", "data_rev", "reason", "overrides", "stages"}


def status(project_dir: Path, settings: Settings, *, last: int = 5) -> dict[str, Any]:
    """Last runs, current champion, index version and data revision."""
    runs_dir = settings.path("runs")
    runs = sorted(p for p in runs_dir.glob("*.json") if not p.name.startswith("."))[-last:] if runs_dir.exists() else []
    champion = Registry.from_settings(settings).champion()
    lock = read_lock(project_dir)
    manifest_md5 = next((o.get("md5") for o in lock.get("stages", {}).get("index", {}).get("outs", [])), None)
    return {
        "state_dir": str(settings.home_dir),
        "data_rev": data_revision(project_dir),
        "index_version": _serving_index(project_dir, settings),
        "index_manifest": manifest_md5[:12] if manifest_md5 else None,
        "champion": champion.model_dump(mode="json", exclude={"training", "evaluation", "eval_scores"}) if champion else None,
        "champion_metrics": champion.evaluation if champion else None,
        "last_runs": [{k: v for k, v in json.loads(p.read_text()).items() if k in _STATUS_KEYS} for p in reversed(runs)],
    }
