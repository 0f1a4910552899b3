"""``llmops status``: the last runs, the current champion, the serving index version and the data revision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from llmops.config import Settings
from llmops.finetune.registry import ModelRecord, Registry
from llmops.reports.run import RunRecord
from llmops.runs.records import run_records
from llmops.versioning import data_revision, read_lock


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


# What `status` shows of a run record (not its metrics, drift or gate: `llmops models show`, the run summary).
_STATUS_KEYS = {"flow", "run_id", "state", "stage", "error", "started", "finished", "data_rev", "reason", "overrides", "stages"}


class Status(BaseModel):
    """What ``llmops status`` shows: the state dir, data revision, serving index version and manifest, the
    champion and the last runs (newest first)."""

    state_dir: str
    data_rev: str
    index_version: str | None
    index_manifest: str | None
    champion: ModelRecord | None
    last_runs: list[RunRecord]

    def as_dict(self) -> dict[str, Any]:
        """``llmops status --json``: the champion without its lineage and scores (its metrics apart), each run
        without its metrics, drift and gate (the run summary has them)."""
        champion = self.champion
        return {
            "state_dir": self.state_dir,
            "data_rev": self.data_rev,
            "index_version": self.index_version,
            "index_manifest": self.index_manifest,
            "champion": champion.model_dump(mode="json", exclude={"training", "evaluation", "eval_scores"}) if champion else None,
            "champion_metrics": champion.evaluation if champion else None,
            "last_runs": [{k: v for k, v in run.as_dict().items() if k in _STATUS_KEYS} for run in self.last_runs],
        }


def status(project_dir: Path, settings: Settings, *, last: int = 5) -> Status:
    """Last runs, current champion, index version and data revision."""
    lock = read_lock(project_dir)
    manifest_md5 = next((o.get("md5") for o in lock.get("stages", {}).get("index", {}).get("outs", [])), None)
    return Status(
        state_dir=str(settings.home_dir),
        data_rev=data_revision(project_dir),
        index_version=_serving_index(project_dir, settings),
        index_manifest=manifest_md5[:12] if manifest_md5 else None,
        champion=Registry.from_settings(settings).champion(),
        last_runs=[RunRecord.read(p) for p in reversed(run_records(settings)[-last:])],
    )
