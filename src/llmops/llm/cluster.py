"""Evaluation answers on a Dask cluster: many greedy generations with the local model, fanned out to the
workers of an executor (:mod:`llmops.parallel`), each loading the model (base + adapter) once.

Only batch generation goes out (``chat_batch``: the gate set's answers); a single ``chat`` (a judge's
question) stays on the model already loaded here. Workers read the base model cache and the adapter from
the same paths as this process: on a remote cluster those live on a shared volume (infra/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from llmops.llm.base import ChatModel, ChatResult

if TYPE_CHECKING:
    from llmops.config import Settings
    from llmops.llm.local import LocalChatModel
    from llmops.parallel import Executor


def _worker_model(cache_root: Path, adapter_dir: Path | None, model_id: str) -> LocalChatModel:
    from llmops.llm.local import LocalChatModel

    return LocalChatModel(cache_root, adapter_dir, model_id=model_id)


def _chat_task(model: LocalChatModel, task: tuple[list[list[dict[str, str]]], int, int]) -> list[ChatResult]:
    conversations, max_new_tokens, batch_size = task
    return model.chat_batch(conversations, max_new_tokens=max_new_tokens, batch_size=batch_size)


class ClusterChatModel:
    """A :class:`~llmops.llm.local.LocalChatModel` whose batch generation runs on an executor's workers.
    Greedy decoding: the same replies as the local model up to float rounding of batch padding."""

    def __init__(self, local: LocalChatModel, executor: Executor) -> None:
        from llmops.parallel import WorkerState

        self.local, self.executor, self.model_id = local, executor, local.model_id
        self._state = WorkerState(_worker_model, (local.cache_root, local.adapter_dir, local.model_id))

    def chat(self, messages: list[dict[str, str]], *, max_new_tokens: int = 128) -> ChatResult:
        return self.local.chat(messages, max_new_tokens=max_new_tokens)

    def chat_batch(
        self, conversations: Sequence[list[dict[str, str]]], *, max_new_tokens: int = 128, batch_size: int = 16
    ) -> list[ChatResult]:
        """One task per batch, spread over the workers; results in input order. The batches are the local
        model's (prompts sorted by length, ``batch_size`` at a time), so the padding and the replies are too."""
        size = max(batch_size, 1)
        template = self.local.tokenizer.apply_chat_template
        lengths = [len(template(m, add_generation_prompt=True, tokenize=False)) for m in conversations]
        order = sorted(range(len(conversations)), key=lambda i: lengths[i])
        groups = [order[i : i + size] for i in range(0, len(order), size)]
        tasks = [([conversations[i] for i in g], max_new_tokens, size) for g in groups]
        results: list[ChatResult | None] = [None] * len(conversations)
        for group, chunk in zip(groups, self.executor.map(_chat_task, tasks, state=self._state), strict=True):
            for i, r in zip(group, chunk, strict=True):
                results[i] = r
        return [r for r in results if r is not None]


def on_cluster(model: ChatModel, settings: Settings, executor: Executor | None = None) -> ChatModel:
    """``model`` with its batch generation on the Dask cluster of ``settings.dask_address`` (or ``executor``);
    unchanged when no cluster is configured or the model is not the local one (an OpenAI endpoint scales
    by itself)."""
    from llmops.llm.local import LocalChatModel

    if not isinstance(model, LocalChatModel) or (executor is None and not settings.dask_address):
        return model
    if executor is None:
        from llmops.parallel import DaskExecutor

        executor = DaskExecutor(settings.dask_address)
    return ClusterChatModel(model, executor)


__all__ = ["ClusterChatModel", "on_cluster"]
