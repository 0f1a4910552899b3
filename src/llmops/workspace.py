"""Paths of the DVC workspace: the contract between dvc.yaml, the stage entrypoints and run summaries.

Stage outputs live in the project (DVC versions them and pushes them to the remote); operational state
(Prefect database, Chroma store, DVC remote, registry, run history) lives under ``LLMOPS_HOME``.
"""

from __future__ import annotations

from pathlib import Path

STAGES = ["ingest", "clean", "redact", "feedback", "index", "gateset", "trainset", "finetune", "evaluate", "monitor"]
# What each flow runs, as slices of the one DAG order (dvc.yaml): retrain refreshes everything training
# reads, then trains; monitor only refreshes the current batch.
BEFORE_TRAINING = STAGES[: STAGES.index("finetune")]
TRAINING = ["finetune", "evaluate"]
MONITORING = [*STAGES[: STAGES.index("redact") + 1], "monitor"]
KINDS = ["conversations", "documents", "feedback"]

RAW = Path("data/raw")
QUARANTINE = Path("data/quarantine")
REDACT_QUARANTINE = Path("data/redact-quarantine")  # records with residual PII after redaction
FEEDBACK_QUARANTINE = Path("data/feedback-quarantine")  # generation-log lines that broke their contract (raw)
TRAINSET_QUARANTINE = Path("data/trainset-quarantine")  # training records with residual PII (leak gate)
CLEAN = Path("data/clean")
REDACTED = Path("data/redacted")
FEEDBACK = Path("data/feedback")
# Conversations: one JSONL file per UTC creation day (llmops.data.incremental), so a night's arrivals are
# new files and every per-record stage reuses what it made of the others.
RAW_CONVERSATIONS = RAW / "conversations"
CLEAN_CONVERSATIONS = CLEAN / "conversations"
REDACTED_CONVERSATIONS = REDACTED / "conversations"
REDACT_QUARANTINE_CONVERSATIONS = REDACT_QUARANTINE / "conversations"
INDEX_MANIFEST = Path("data/index/manifest.jsonl")
TRAINSET = Path("data/trainset")
ADAPTER = Path("models/adapter")
LOSS_PLOT = Path("reports/finetune/loss.png")
EVAL_SAMPLES = Path("reports/evaluate/samples.jsonl")
DRIFT_DIR = Path("reports/drift")
METRICS_DIR = Path("metrics")
EVAL_METRICS = Path("metrics.json")


def stage_metrics(stage: str) -> Path:
    """Per-stage counts/timings (declared under ``metrics:`` in dvc.yaml)."""
    return EVAL_METRICS if stage == "evaluate" else METRICS_DIR / f"{stage}.json"
