"""The chat model a fine-tuning run produced, whichever backend trained it.

``local`` runs leave a LoRA adapter directory (served on the local base model); ``openai`` runs leave
a ``fine_tuned_model`` id that only the OpenAI API can serve. The evaluate stage and the answer
service both go through :func:`trained_chat_model`, so an OpenAI-trained challenger is evaluated and
served as itself, never as the local base model.
"""

from __future__ import annotations

from pathlib import Path

from llmops.config import Settings
from llmops.errors import ConfigError
from llmops.llm.base import ChatModel
from llmops.reports.training import read_training_report


def trained_chat_model(backend: str, model_id: str | None, artifact_dir: Path | None, settings: Settings) -> ChatModel:
    """``openai``: the fine-tuned model through the (keyed) OpenAI client; anything else: base + adapter."""
    if backend == "openai":
        if not model_id:
            raise ConfigError("the OpenAI fine-tuning record has no fine_tuned_model: the job did not succeed")
        if settings.openai_api_key is None:
            raise ConfigError(f"{model_id} was trained with the OpenAI backend: set OPENAI_API_KEY to evaluate or serve it")
        from llmops.llm.openai_chat import OpenAIChatModel

        return OpenAIChatModel.from_settings(model_id, settings)
    from llmops.llm.local import LocalChatModel

    return LocalChatModel(settings.base_model_cache, artifact_dir, model_id=model_id)


def model_in(artifact_dir: Path, settings: Settings, *, default_backend: str = "local") -> ChatModel:
    """The model a fine-tuning run left in ``artifact_dir`` (its ``training.json`` names backend and id)."""
    record = read_training_report(artifact_dir)
    return trained_chat_model(record.backend or default_backend, record.model_id, artifact_dir, settings)
