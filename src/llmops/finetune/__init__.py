"""Training-set building and fine-tuning backends (local LoRA with peft; OpenAI jobs API)."""

from __future__ import annotations

from llmops.finetune.trainset import TrainsetResult, build_trainset

__all__ = ["TrainsetResult", "build_trainset"]
