"""Validation loss measures answer fit: on held-out examples in the served prompt format, an adapter trained
on answers shuffled across questions must score clearly worse than one trained on the real answers."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from llmops.config import BaseParams, FinetuneParams, IndexParams, ServeParams, Settings, TrainsetParams
from llmops.data.ingest import parse_jsonl
from llmops.finetune.lora import train_lora
from llmops.finetune.trainset import AnswerFit, ServingPrompt, build_trainset
from llmops.finetune.validate import base_token_counter
from llmops.index.hybrid import open_retriever
from llmops.index.refresh import refresh_index
from llmops.index.store import chroma_client
from llmops.jsonl import read_jsonl
from llmops.records import Conversation, Document, EvalQuestion, TrainingExample

SAMPLE = Path(__file__).resolve().parents[2] / "data/sample"


def _shuffled(examples: list[TrainingExample], seed: int) -> list[TrainingExample]:
    answers = [e.messages[-1] for e in examples]
    random.Random(seed).shuffle(answers)
    return [e.model_copy(update={"messages": [*e.messages[:-1], a]}) for e, a in zip(examples, answers, strict=True)]


@pytest.mark.slow  # index + two short LoRA runs on the sample: minutes on 2 CPU cores
def test_shuffled_answers_score_clearly_worse_on_validation(tmp_path: Path, model_cache: Path, embedder: object) -> None:
    settings = Settings(home=tmp_path / "home")
    docs = read_jsonl(SAMPLE / "documents.jsonl", Document)
    refresh_index(docs, chroma_client(settings), embedder, IndexParams())  # type: ignore[arg-type]
    retriever = open_retriever(chroma_client(settings), embedder, IndexParams())  # type: ignore[arg-type]
    convs = [c for c in parse_jsonl((SAMPLE / "conversations.jsonl").read_bytes(), Conversation, "s").records]
    cfg = FinetuneParams(
        max_steps=30, batch_size=2, max_seq_len=256, learning_rate=1e-3, target_modules=["all-linear"], eval_examples=24
    )
    data = build_trainset(
        [c for c in convs if c.metadata.get("source") == "doc2dial"],
        [],
        read_jsonl(SAMPLE / "eval_questions.jsonl", EvalQuestion),
        TrainsetParams(validation_share=0.15, kb_pairs=False),
        BaseParams(),
        prompt=ServingPrompt(retriever, ServeParams(top_k=2, context_chars=400)),
        fit=AnswerFit(base_token_counter(model_cache / "base"), cfg.max_seq_len),
    )
    assert len(data.train) >= 60 and len(data.validation) >= 16
    real = train_lora(data.train, data.validation, cfg, base_cache=model_cache / "base", out_dir=tmp_path / "real")
    shuffled = train_lora(
        _shuffled(data.train, 1), data.validation, cfg, base_cache=model_cache / "base", out_dir=tmp_path / "shuffled"
    )
    assert real.val_loss_before == shuffled.val_loss_before  # same held-out examples, same base model
    assert real.val_loss_after is not None and shuffled.val_loss_after is not None
    assert real.val_loss_after < real.val_loss_before
    assert shuffled.val_loss_after > real.val_loss_after + 0.1, (real.val_loss, shuffled.val_loss)
