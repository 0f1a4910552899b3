"""Train/serve prompt parity on real components: the training example for a question and the prompt the
answer service sends the model for it share the same system prompt and the same context block."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmops.config import BaseParams, IndexParams, Params, ServeParams, Settings
from llmops.feedback.log import GenerationLog
from llmops.finetune.trainset import ServingPrompt, build_trainset
from llmops.index.embed import LocalEmbedder
from llmops.index.hybrid import open_retriever
from llmops.index.refresh import refresh_index
from llmops.index.store import chroma_client
from llmops.llm.local import LocalChatModel
from llmops.llm.prompts import context_block, rag_messages
from llmops.pii.redact import Redactor
from llmops.records import Conversation, Document, TrainingExample, Turn
from llmops.serve.answerer import Answerer
from llmops.serve.app import IndexRetriever
from tests.factories import T0

DOCS = [
    Document(doc_id="renew", text="Renew your driver license online at the DMV website; the fee is 64 dollars."),
    Document(doc_id="ssa", text="You can apply for retirement benefits online from age 62 on the SSA website."),
    Document(doc_id="loans", text="Federal student loans must be repaid; income-driven repayment plans can lower payments."),
    Document(doc_id="plates", text="Form MV-82 registers a vehicle and issues licence plates at a DMV office."),
]
QUESTION = "How do I renew my driver license?"


class RecordingModel:
    """The real local model; remembers the messages it was asked with."""

    def __init__(self, model: LocalChatModel) -> None:
        self.model, self.model_id, self.asked = model, model.model_id, []

    def chat(self, messages: list[dict[str, str]], *, max_new_tokens: int = 128) -> Any:
        self.asked.append(messages)
        return self.model.chat(messages, max_new_tokens=max_new_tokens)


def served_messages(tmp_path: Path, model_cache: Path, params: Params) -> tuple[Settings, RecordingModel, list[dict[str, str]]]:
    """Index DOCS, ask the real answer service QUESTION; the settings, the recording model and the messages
    the service sent the model."""
    settings = Settings(home=tmp_path / "home")
    refresh_index(DOCS, chroma_client(settings), LocalEmbedder(), IndexParams())
    model = RecordingModel(LocalChatModel(model_cache / "base"))
    answerer = Answerer(
        IndexRetriever(settings, params),
        model,
        GenerationLog(tmp_path / "log"),
        Redactor(params.redact).redact_texts,
        params.serve,
        params.base,
        index_version="v1",
        data_rev="r1",
    )
    answerer.answer(QUESTION)
    return settings, model, model.asked.pop()


def test_context_block_joins_and_cuts() -> None:
    assert context_block(["a" * 5, "b" * 5], 8) == "aaaaa\n\nb"
    assert rag_messages("q?", ["ctx"], "SYS", 100)[1]["content"] == "Context:\nctx\n\nQuestion: q?"


def test_a_training_example_carries_the_prompt_the_service_serves(tmp_path: Path, model_cache: Path) -> None:
    params = Params(serve=ServeParams(top_k=2, context_chars=120, max_new_tokens=2))
    settings, _, served = served_messages(tmp_path, model_cache, params)

    conv = Conversation(
        conversation_id="c1",
        channel="chat",
        created_at=T0,
        turns=[Turn(role="customer", text=QUESTION), Turn(role="agent", text="Renew it online at the DMV website.")],
    )
    retriever = open_retriever(chroma_client(settings), LocalEmbedder(), params.index)
    result = build_trainset(
        [conv],
        [],
        [],
        params.trainset.model_copy(update={"validation_share": 0.0}),
        BaseParams(),
        prompt=ServingPrompt(retriever, params.serve),
    )
    [example] = result.train
    assert isinstance(example, TrainingExample)
    trained = [m.model_dump() for m in example.messages[:-1]]
    assert trained == served  # same system prompt, same context block, same question
    assert served[1]["content"].startswith("Context:\nRenew your driver license online")
    assert len(served[1]["content"].split("\n\nQuestion:")[0]) <= len("Context:\n") + 120
