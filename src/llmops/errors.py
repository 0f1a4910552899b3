"""One exception tree for the whole library.

::

    LLMOpsError                      base; the CLI maps it to exit code 1 with its message
    ├── ConfigError                  params.yaml / environment is wrong (exit 2)
    ├── DataContractError            a record or file breaks a data contract (ARCHITECTURE.md)
    │   ├── EmptyDatasetError        nothing valid left to work on
    │   └── TrainingDataError        fine-tuning data fails validation (format, tokens, special tokens)
    ├── StorageError                 object store (local / S3) could not be read or written
    ├── ModelNotAvailableError       a local model package is not installed / cannot load
    ├── IndexStateError              the vector index / its serving alias is not in a usable state
    ├── PIILeakError                 residual personal data found where none may be
    ├── StageError                   a DVC stage failed (carries the stage name)
    ├── DriftDetected                drift crossed a threshold (raised only when asked to fail)
    ├── GateFailed                   a challenger model did not pass the promotion gate
    ├── BudgetExceeded               a fine-tune's estimated cost is over the budget cap (nothing uploaded)
    ├── FineTuneError                a fine-tuning job failed or was cancelled (carries the backend's code)
    ├── RegistryError                a registry operation is impossible (unknown model, nothing to roll back)
    └── RunLocked                    another run holds the lock (one retrain at a time)

Messages say what was wrong and how to fix it.
"""

from __future__ import annotations


class LLMOpsError(Exception):
    """Base of every error raised on purpose by llmops."""

    exit_code: int = 1


class ConfigError(LLMOpsError):
    """Configuration (params.yaml, .env, environment) is missing or invalid."""

    exit_code = 2


class DataContractError(LLMOpsError):
    """Input does not follow a data contract."""


class EmptyDatasetError(DataContractError):
    """A stage received no valid records at all."""


class StorageError(LLMOpsError):
    """Reading or writing the object store failed."""


class ModelNotAvailableError(LLMOpsError):
    """A model package is missing or its files cannot be loaded."""


class IndexStateError(LLMOpsError):
    """The vector index or its serving alias cannot be used as asked (nothing published, no version to roll back to)."""


class PIILeakError(LLMOpsError):
    """Personal data was found in an output that must be free of it."""


class StageError(LLMOpsError):
    """A pipeline stage failed."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"stage '{stage}' failed: {message}")
        self.stage = stage


class DriftDetected(LLMOpsError):
    """Drift crossed a configured threshold."""

    exit_code = 3


class GateFailed(LLMOpsError):
    """A challenger model did not pass the promotion gate."""

    exit_code = 4


class TrainingDataError(DataContractError):
    """Fine-tuning data failed validation; nothing was trained or uploaded."""


class BudgetExceeded(LLMOpsError):
    """The estimated fine-tuning cost is above ``finetune.budget_usd``."""

    exit_code = 5


class FineTuneError(LLMOpsError):
    """A fine-tuning job failed, was cancelled or timed out."""

    def __init__(self, message: str, *, code: str | None = None, job_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.job_id = job_id


class RegistryError(LLMOpsError):
    """A registry operation is not possible (unknown model, nothing to roll back to)."""


class RunLocked(LLMOpsError):
    """Another run holds the lock."""

    exit_code = 6
