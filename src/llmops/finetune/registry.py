"""Model registry: champion/challenger records with lineage, kept as a versioned file in the object store.

Layout under the registry root (a local directory or ``s3://bucket/prefix``; ``LLMOPS_REGISTRY_URI``)::

    registry.json                    the current state (carries its own ``version``)
    history/registry-000007.json     every state ever written, so any change can be audited or undone
    models/<model_id>/...            the artifact (adapter files, or the backend's job record)
    lineage/<model_id>/...           what it was made from, beyond the record (the ids of its training examples)

Artifacts are copied into the registry, so a promoted model keeps serving whatever the workspace holds
later, and a crashed run never touches the champion. A write checks that nobody else wrote in between
(optimistic concurrency on ``version``) instead of silently losing their change.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from llmops.errors import RegistryError, StorageError
from llmops.storage.base import ObjectStore, store_for

Status = Literal["challenger", "pending", "champion", "retired", "rejected"]
LINEAGE_FIELDS = ("model_id", "status", "base_model", "backend", "data_rev", "params_hash", "created_at", "reason", "eval_key")


_PER_STEP = {"train_loss", "step_seconds", "step_tokens"}  # curves: in training.json, not in the lineage listing


class ModelRecord(BaseModel):
    model_id: str
    base_model: str
    backend: str = "local"
    data_rev: str
    params_hash: str = ""
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    reason: str = "nightly"
    training: dict[str, Any] = Field(default_factory=dict)
    evaluation: dict[str, Any] = Field(default_factory=dict)
    eval_scores: dict[str, list[float]] = Field(default_factory=dict)  # per question, k repeats (gate bootstrap)
    eval_key: str = ""  # what the scores were computed on (gate set, index, prompt, decoding): see evaluation.baseline
    artifact_path: str = ""
    status: Status = "challenger"
    gate_reasons: list[str] = Field(default_factory=list)
    gate_evidence: dict[str, Any] = Field(default_factory=dict)  # paired questions, CI, p-value, MDE, decision
    events: list[dict[str, str]] = Field(default_factory=list)  # status changes: {at, status, reason}

    def lineage(self) -> dict[str, Any]:
        """What ``llmops models list --json`` prints: lineage, training and evaluation metrics."""
        out = self.model_dump(mode="json", include=set(LINEAGE_FIELDS))
        out["training"] = {k: v for k, v in self.training.items() if k not in _PER_STEP}
        out["evaluation"] = self.evaluation
        out["artifact_path"] = self.artifact_path
        out["gate_reasons"] = self.gate_reasons
        out["gate"] = self.gate_evidence
        out["scored_questions"] = len(self.eval_scores)
        return out


class RegistryState(BaseModel):
    version: int = 0
    champion: str | None = None
    previous_champions: list[str] = Field(default_factory=list)
    models: list[ModelRecord] = Field(default_factory=list)


class Registry:
    def __init__(self, root: str | Path, store: ObjectStore | None = None) -> None:
        self.root = str(root).rstrip("/")
        self._store = store or store_for(self.root)

    @classmethod
    def from_settings(cls, settings: Any) -> Registry:
        root = settings.registry_root
        return cls(root, store_for(root, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region))

    def _uri(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def load(self) -> RegistryState:
        uri = self._uri("registry.json")
        if not self._store.exists(uri):
            return RegistryState()
        return RegistryState.model_validate_json(self._store.read_bytes(uri))

    def _save(self, state: RegistryState, loaded_version: int) -> None:
        current = self.load().version
        if current != loaded_version:
            raise StorageError(
                f"the registry at {self.root} changed while this run was updating it (version {loaded_version} -> "
                f"{current}); rerun the command"
            )
        state.version = loaded_version + 1
        data = state.model_dump_json(indent=2).encode()
        self._store.write_bytes(self._uri("history", f"registry-{state.version:06d}.json"), data)
        self._store.write_bytes(self._uri("registry.json"), data)

    def history(self) -> list[str]:
        """URIs of every registry version written so far, oldest first."""
        return self._store.list(self._uri("history") + "/")

    def get(self, model_id: str) -> ModelRecord | None:
        return next((m for m in self.load().models if m.model_id == model_id), None)

    def models(self) -> list[ModelRecord]:
        return self.load().models

    def champion(self) -> ModelRecord | None:
        state = self.load()
        return next((m for m in state.models if m.model_id == state.champion), None) if state.champion else None

    def register(self, record: ModelRecord, artifact_dir: Path | None) -> ModelRecord:
        """Copy the artifact into the registry and add (or refresh) the record."""
        target = self._uri("models", record.model_id)
        if artifact_dir is not None and not self._store.exists(self._uri("models", record.model_id, ".complete")):
            for path in sorted(p for p in artifact_dir.rglob("*") if p.is_file()):
                self._store.write_bytes(f"{target}/{path.relative_to(artifact_dir).as_posix()}", path.read_bytes())
            self._store.write_bytes(self._uri("models", record.model_id, ".complete"), b"")
        record = record.model_copy(update={"artifact_path": target if artifact_dir is not None else ""})
        state = self.load()
        loaded = state.version
        existing = next((m for m in state.models if m.model_id == record.model_id), None)
        if existing is not None:
            record = record.model_copy(
                update={"status": existing.status, "created_at": existing.created_at, "events": existing.events}
            )
        state.models = [m for m in state.models if m.model_id != record.model_id] + [record]
        self._save(state, loaded)
        return record

    def set_status(
        self,
        model_id: str,
        status: Status,
        reasons: list[str] | None = None,
        *,
        reason: str = "",
        evidence: dict[str, Any] | None = None,
    ) -> ModelRecord:
        """Set a model's status; ``champion`` retires the previous one (kept for rollback)."""
        state = self.load()
        loaded = state.version
        record = next((m for m in state.models if m.model_id == model_id), None)
        if record is None:
            known = ", ".join(m.model_id for m in state.models) or "none"
            raise RegistryError(f"no model {model_id!r} in the registry (known: {known}); see `llmops models list`")
        now = datetime.now(UTC).isoformat()
        if status == "champion" and state.champion != model_id:
            for m in state.models:
                if m.model_id == state.champion:
                    m.status = "retired"
                    m.events.append({"at": now, "status": "retired", "reason": f"replaced by {model_id}"})
            if state.champion:
                state.previous_champions.append(state.champion)
            state.champion = model_id
        record.status = status
        record.gate_reasons = reasons or record.gate_reasons
        record.gate_evidence = evidence if evidence is not None else record.gate_evidence
        record.events.append({"at": now, "status": status, "reason": reason or "; ".join(reasons or [])})
        self._save(state, loaded)
        return record

    def update_evaluation(
        self, model_id: str, evaluation: dict[str, Any], scores: dict[str, list[float]], eval_key: str
    ) -> ModelRecord:
        """Replace a model's evaluation and per-question scores (a re-score on a new index or gate set)."""
        state = self.load()
        loaded = state.version
        record = next((m for m in state.models if m.model_id == model_id), None)
        if record is None:
            raise RegistryError(f"no model {model_id!r} in the registry; see `llmops models list`")
        record.evaluation, record.eval_scores, record.eval_key = evaluation, scores, eval_key
        record.events.append({"at": datetime.now(UTC).isoformat(), "status": record.status, "reason": f"re-scored ({eval_key})"})
        self._save(state, loaded)
        return record

    def decide_pending(self, model_id: str, *, approve: bool, reason: str) -> ModelRecord:
        """A person's verdict on a model the gate passed and that waits for approval (status ``pending``)."""
        record = self.get(model_id)
        if record is None:
            raise RegistryError(f"no model {model_id!r} in the registry; see `llmops models list`")
        if record.status != "pending":
            raise RegistryError(
                f"{model_id} is {record.status}, not pending approval: only a model the gate passed with "
                "gate.require_approval on waits for approve/reject"
            )
        gated_against = record.gate_evidence.get("champion_id")
        champion = self.champion()
        if approve and gated_against and champion is not None and champion.model_id != gated_against:
            raise RegistryError(
                f"{model_id} passed the gate against {gated_against}, but the champion is now {champion.model_id}: "
                f"it was never compared with the current champion. Reject it (`llmops models reject {model_id}`) "
                "and let the next retrain gate a model against the current champion"
            )
        verdict = "approved" if approve else "rejected by a reviewer"
        return self.set_status(model_id, "champion" if approve else "rejected", reason=f"{verdict}: {reason}")

    def promote(self, model_id: str, *, reason: str) -> ModelRecord:
        """Make ``model_id`` champion by hand (bypasses the gate; the reason is recorded)."""
        return self.set_status(model_id, "champion", reason=f"manual promotion: {reason}")

    def rollback(self, *, reason: str) -> ModelRecord:
        """Reinstate the previous champion; the current one is marked rejected with ``reason``."""
        state = self.load()
        if not state.previous_champions:
            raise RegistryError("no previous champion to roll back to: the registry has only ever had one (or none)")
        loaded = state.version
        target = state.previous_champions.pop()
        now = datetime.now(UTC).isoformat()
        for m in state.models:
            if m.model_id == state.champion:
                m.status = "rejected"
                m.events.append({"at": now, "status": "rejected", "reason": f"rolled back: {reason}"})
            if m.model_id == target:
                m.status = "champion"
                m.events.append({"at": now, "status": "champion", "reason": f"rollback: {reason}"})
        state.champion = target
        self._save(state, loaded)
        return next(m for m in state.models if m.model_id == target)

    def write_lineage(self, model_id: str, name: str, data: bytes) -> None:
        """A file of a model's lineage (e.g. the ids of its training examples), next to, not in, its artifact."""
        self._store.write_bytes(self._uri("lineage", model_id, name), data)

    def read_lineage(self, model_id: str, name: str) -> bytes | None:
        uri = self._uri("lineage", model_id, name)
        return self._store.read_bytes(uri) if self._store.exists(uri) else None

    def fetch_artifact(self, model_id: str, dest: Path) -> Path:
        """Copy a model's artifact to a local directory (from S3 or a local registry) and return it."""
        prefix = self._uri("models", model_id) + "/"
        files = [u for u in self._store.list(prefix) if not u.endswith("/.complete")]
        if not files:
            raise RegistryError(f"model {model_id!r} has no artifact under {prefix}")
        for uri in files:
            path = dest / uri[len(prefix) :]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self._store.read_bytes(uri))
        return dest


def params_hash(section: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(section, sort_keys=True, default=str).encode()).hexdigest()[:12]
