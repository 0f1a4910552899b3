"""OpenAI fine-tuning backend: upload, create the job, poll with backoff, stream events, resume, cancel.

The job is keyed by what it trains on (file contents, model, hyperparameters, seed) and its state is
persisted after every step under ``<LLMOPS_HOME>/finetune/openai-jobs/<key>.json``. A flow that crashes
or is restarted therefore resumes polling the same job instead of paying for a second one; a job that
already succeeded is returned as is. The client is injected (``OpenAI(base_url=...)``), so any
OpenAI-compatible endpoint works and tests run against a local server. 429s and 5xx are retried by the
client (``max_retries``, honouring ``retry-after``).

Before anything is uploaded, :func:`check_target` makes sure the job can run at all: the target model is
listed for this key (``models.list``), it is not past its fine-tuning end or shutdown date
(:data:`MODEL_LIFECYCLE`), and the file has OpenAI's minimum of 10 examples. A job the API refuses is
an error that names the local backend (``finetune.backend: local``) as the way on.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from llmops.config import FinetuneParams
from llmops.errors import DataContractError, FineTuneError, TrainingDataError

TERMINAL = {"succeeded", "failed", "cancelled"}
MIN_EXAMPLES = 10  # OpenAI refuses a fine-tuning file with fewer
LOCAL_WAY_ON = "set finetune.backend: local to train a LoRA adapter on the local model instead"


@dataclass(frozen=True)
class Lifecycle:
    """Dates after which OpenAI takes no new fine-tuning jobs for a model, and turns the model off."""

    fine_tune_until: date | None = None
    shutdown: date | None = None


# As announced on OpenAI's deprecations page (https://platform.openai.com/docs/deprecations); extend it
# when a new announcement names a model you train. A model not listed here is only checked against models.list.
MODEL_LIFECYCLE: dict[str, Lifecycle] = {
    "gpt-4o-mini-2024-07-18": Lifecycle(fine_tune_until=date(2027, 1, 6), shutdown=date(2027, 1, 14)),
}


def _count_examples(path: Path) -> int:
    with path.open(encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def check_target(client: Any, model: str, train: Path, *, today: date | None = None) -> None:
    """Refuse before upload (see module docstring): :class:`TrainingDataError` under :data:`MIN_EXAMPLES`,
    :class:`FineTuneError` (``code`` ``model_not_listed`` / ``fine_tuning_ended`` / ``model_shut_down``) otherwise."""
    n = _count_examples(train)
    if n < MIN_EXAMPLES:
        raise TrainingDataError(
            f"{train} has {n} examples; OpenAI fine-tuning needs at least {MIN_EXAMPLES}: nothing was uploaded. "
            f"Add data (trainset stage counts say what was dropped), or {LOCAL_WAY_ON}"
        )
    today = today or datetime.now(UTC).date()
    life = MODEL_LIFECYCLE.get(model, Lifecycle())
    if life.shutdown and today >= life.shutdown:
        raise FineTuneError(
            f"{model} was shut down on {life.shutdown}: pick a current model in finetune.openai_model, or {LOCAL_WAY_ON}",
            code="model_shut_down",
        )
    if life.fine_tune_until and today > life.fine_tune_until:
        raise FineTuneError(
            f"OpenAI takes no new fine-tuning jobs for {model} after {life.fine_tune_until}: pick a current model in "
            f"finetune.openai_model, or {LOCAL_WAY_ON}",
            code="fine_tuning_ended",
        )
    listed = {m.id for m in client.models.list()}
    if model not in listed:
        raise FineTuneError(
            f"{model} is not among the {len(listed)} models this API key can use (models.list): check "
            f"finetune.openai_model and the key's project, or {LOCAL_WAY_ON}",
            code="model_not_listed",
        )


class JobState(BaseModel):
    key: str
    model: str
    training_file: str | None = None
    validation_file: str | None = None
    job_id: str | None = None
    status: str = "new"
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    error_code: str | None = None
    seen_events: list[str] = Field(default_factory=list)
    metrics: list[dict[str, Any]] = Field(default_factory=list)  # "metrics" events: {step, train_loss, ...}
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def read(cls, path: Path) -> JobState:
        """A persisted job state; a malformed file is a :class:`DataContractError` naming it."""
        try:
            return cls.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            err = exc.errors()[0]
            raise DataContractError(
                f"{path} is not a valid fine-tuning job state ({'.'.join(map(str, err['loc'])) or 'the file'}: {err['msg']}): "
                "it is written by this tool only; move it aside to start a new job (the job it named keeps running)"
            ) from exc


def job_key(train: Path, validation: Path | None, cfg: FinetuneParams, seed: int) -> str:
    h = hashlib.sha256()
    for path in (train, validation):
        h.update(path.read_bytes() if path is not None else b"-")
    h.update(json.dumps([cfg.openai_model, cfg.epochs, cfg.suffix, seed]).encode())
    return h.hexdigest()[:16]


class OpenAIFineTuner:
    """Runs one OpenAI fine-tuning job to completion (or resumes it)."""

    def __init__(
        self,
        client: Any,
        cfg: FinetuneParams,
        state_dir: Path,
        *,
        log: Callable[[str], None] = print,
        sleep: Callable[[float], None] = time.sleep,
        today: date | None = None,
    ) -> None:
        self.client, self.cfg, self.state_dir, self.log, self.sleep = client, cfg, state_dir, log, sleep
        self.today = today  # None: the current date (tests pin it to check the lifecycle table)

    def _path(self, key: str) -> Path:
        return self.state_dir / f"{key}.json"

    def load_state(self, key: str) -> JobState | None:
        path = self._path(key)
        return JobState.read(path) if path.exists() else None

    def _save(self, state: JobState) -> None:
        state.updated_at = datetime.now(UTC)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._path(state.key).with_suffix(".tmp")
        tmp.write_text(state.model_dump_json(indent=2), encoding="utf-8")
        tmp.replace(self._path(state.key))

    def run(self, train: Path, validation: Path | None, *, seed: int) -> JobState:
        """Upload + create (unless a job for this data exists), then poll until it finishes."""
        key = job_key(train, validation, self.cfg, seed)
        state = self.load_state(key)
        if state is not None and state.status in {"failed", "cancelled"}:
            self.log(f"previous job {state.job_id} {state.status} ({state.error_code}); starting a new one")
            state = None
        state = state or JobState(key=key, model=self.cfg.openai_model)
        if state.status == "succeeded":
            self.log(f"job {state.job_id} already succeeded: {state.fine_tuned_model}")
            return state
        if state.job_id:
            self.log(f"resuming job {state.job_id} (status {state.status}) instead of starting a new one")
        else:
            self._create(state, train, validation, seed)
        return self._poll(state)

    def _create(self, state: JobState, train: Path, validation: Path | None, seed: int) -> None:
        import openai

        if state.training_file is None:
            check_target(self.client, self.cfg.openai_model, train, today=self.today)
            with train.open("rb") as fh:
                state.training_file = self.client.files.create(file=fh, purpose="fine-tune").id
            self._save(state)
        if validation is not None and state.validation_file is None:
            with validation.open("rb") as fh:
                state.validation_file = self.client.files.create(file=fh, purpose="fine-tune").id
            self._save(state)
        try:
            job = self.client.fine_tuning.jobs.create(
                model=self.cfg.openai_model,
                training_file=state.training_file,
                validation_file=state.validation_file,
                suffix=self.cfg.suffix,
                seed=seed,
                method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": self.cfg.epochs}}},
            )
        except (openai.BadRequestError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            code = body.get("code") or getattr(exc, "code", None)
            raise FineTuneError(
                f"OpenAI refused a fine-tuning job on {self.cfg.openai_model} (HTTP {exc.status_code}"
                f"{', ' + str(code) if code else ''}: {body.get('message') or exc.message}); the files are uploaded, "
                f"no job was created. Fix the cause and rerun, or {LOCAL_WAY_ON}",
                code=str(code) if code else "job_refused",
            ) from exc
        state.job_id, state.status = job.id, job.status
        self._save(state)  # persisted at once: a crash from here on resumes this job
        self.log(f"created fine-tuning job {job.id} on {self.cfg.openai_model} (status {job.status})")

    def _stream_events(self, state: JobState) -> bool:
        page = self.client.fine_tuning.jobs.list_events(fine_tuning_job_id=state.job_id, limit=100)
        new = [e for e in page.data if e.id not in state.seen_events]
        for event in reversed(new):  # the API lists newest first
            self.log(f"[{state.job_id}] {event.level}: {event.message}")
            if getattr(event, "type", None) == "metrics" and isinstance(event.data, dict):
                state.metrics.append(event.data)
            state.seen_events.append(event.id)
        return bool(new)

    def _poll(self, state: JobState) -> JobState:
        delay, waited = self.cfg.poll_interval_s, 0.0
        while True:
            job = self.client.fine_tuning.jobs.retrieve(state.job_id)
            changed = self._stream_events(state) or job.status != state.status
            state.status = job.status
            if job.status == "succeeded":
                state.fine_tuned_model, state.trained_tokens = job.fine_tuned_model, job.trained_tokens
                self._save(state)
                self.log(f"job {state.job_id} succeeded: {state.fine_tuned_model}")
                return state
            if job.status in {"failed", "cancelled"}:
                state.error_code = job.error.code if job.error else None
                self._save(state)
                detail = f"{job.error.code}: {job.error.message}" if job.error else "no error detail"
                raise FineTuneError(
                    f"OpenAI fine-tuning job {state.job_id} {job.status} ({detail}); fix the cause and rerun "
                    "(a new job is created)",
                    code=state.error_code,
                    job_id=state.job_id,
                )
            self._save(state)
            if waited >= self.cfg.max_wait_s:
                raise FineTuneError(
                    f"job {state.job_id} still {job.status} after {waited:.0f} s (finetune.max_wait_s): rerun to resume "
                    "polling it, or cancel it with `llmops finetune cancel`",
                    job_id=state.job_id,
                )
            # Back off while nothing happens; poll at the base rate again once events flow.
            delay = self.cfg.poll_interval_s if changed else min(delay * 2, self.cfg.poll_interval_s * 8)
            self.sleep(delay)
            waited += delay

    def cancel(self, job_id: str) -> str:
        """Cancel a running job and mark its persisted state; returns the job's new status."""
        job = self.client.fine_tuning.jobs.cancel(job_id)
        for path in self.state_dir.glob("*.json") if self.state_dir.exists() else []:
            state = JobState.read(path)
            if state.job_id == job_id:
                state.status = job.status
                self._save(state)
        self.log(f"job {job_id}: {job.status}")
        return job.status


def openai_client(settings: Any, *, max_retries: int = 5) -> Any:
    """An ``OpenAI`` client from settings (``OPENAI_API_KEY``, optional ``OPENAI_BASE_URL``)."""
    from openai import OpenAI

    from llmops.errors import ConfigError

    if settings.openai_api_key is None:
        raise ConfigError("finetune.backend is openai but OPENAI_API_KEY is not set: set it in .env or use backend: local")
    return OpenAI(api_key=settings.openai_api_key.get_secret_value(), base_url=settings.openai_base_url, max_retries=max_retries)
