"""Model registry: champion/challenger records with lineage, stored under ``<LLMOPS_HOME>/registry``.

Adapters are copied into the registry, so a promoted model keeps serving whatever the workspace holds
later, and a crashed run never touches the champion.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from llmops.storage.local import LocalStore


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
    artifact_path: str = ""
    status: str = "challenger"  # challenger | champion | retired | rejected
    gate_reasons: list[str] = Field(default_factory=list)


class RegistryState(BaseModel):
    champion: str | None = None
    previous_champions: list[str] = Field(default_factory=list)
    models: list[ModelRecord] = Field(default_factory=list)


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._file = root / "registry.json"
        self._store = LocalStore()

    def load(self) -> RegistryState:
        if not self._file.exists():
            return RegistryState()
        return RegistryState.model_validate_json(self._file.read_text(encoding="utf-8"))

    def _save(self, state: RegistryState) -> None:
        self._store.write_bytes(str(self._file), state.model_dump_json(indent=2).encode())

    def get(self, model_id: str) -> ModelRecord | None:
        return next((m for m in self.load().models if m.model_id == model_id), None)

    def champion(self) -> ModelRecord | None:
        state = self.load()
        return self.get(state.champion) if state.champion else None

    def register(self, record: ModelRecord, artifact_dir: Path) -> ModelRecord:
        """Copy the artifact into the registry and add (or refresh) the record."""
        target = self.root / "models" / record.model_id
        if not target.exists():
            tmp = target.with_name(f".{record.model_id}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(artifact_dir, tmp)
            tmp.rename(target)
        record = record.model_copy(update={"artifact_path": str(target)})
        state = self.load()
        existing = next((m for m in state.models if m.model_id == record.model_id), None)
        if existing is not None:
            record = record.model_copy(update={"status": existing.status, "created_at": existing.created_at})
        state.models = [m for m in state.models if m.model_id != record.model_id] + [record]
        self._save(state)
        return record

    def set_status(self, model_id: str, status: str, reasons: list[str] | None = None) -> None:
        state = self.load()
        for m in state.models:
            if m.model_id == model_id:
                m.status = status
                m.gate_reasons = reasons or m.gate_reasons
        if status == "champion" and state.champion != model_id:
            for m in state.models:
                if m.model_id == state.champion:
                    m.status = "retired"
            if state.champion:
                state.previous_champions.append(state.champion)
            state.champion = model_id
        self._save(state)


def params_hash(section: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(section, sort_keys=True, default=str).encode()).hexdigest()[:12]
