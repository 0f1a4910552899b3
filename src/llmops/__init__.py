"""llmops: a nightly LLMOps pipeline for a customer-support assistant.

Importing this package has no side effects: no directories, no models, no logging set-up.
Every step is a plain function in a subpackage (``llmops.data``, ``llmops.pii``, ``llmops.index``,
``llmops.finetune``, ``llmops.evaluation``, ``llmops.monitoring``); Prefect flows and DVC stages only call them.
"""

from __future__ import annotations

__version__ = "0.1.0"
