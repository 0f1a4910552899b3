"""The evaluation answers a gate question with the prompt the answer service sends for it: the same
retrieval depth (``serve.top_k``, one setting), context block and system prompt, on real components."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops.config import Params, ServeParams
from llmops.evaluation.suite import evaluate_model
from llmops.index.embed import LocalEmbedder
from llmops.index.hybrid import open_retriever
from llmops.index.store import chroma_client
from llmops.records import EvalQuestion
from llmops.reports.evaluation import EvaluationReport, read_samples, write_samples
from tests.unit.test_prompts import QUESTION, served_messages


@pytest.mark.parametrize("top_k", [1, 2])
def test_evaluation_prompt_is_the_served_prompt(tmp_path: Path, model_cache: Path, top_k: int) -> None:
    params = Params(serve=ServeParams(top_k=top_k, context_chars=2000, max_new_tokens=2))
    params = params.model_copy(
        update={"evaluate": params.evaluate.model_copy(update={"max_new_tokens": 2, "context_chars": 2000, "judge_questions": 0})}
    )
    settings, model, served = served_messages(tmp_path, model_cache, params)

    question = EvalQuestion(id="q1", query=QUESTION, gold_doc_ids=["renew"], answer="Renew it online at the DMV website.")
    retriever = open_retriever(chroma_client(settings), LocalEmbedder(), params.index)
    metrics, rows = evaluate_model([question], retriever, model, LocalEmbedder(), params, settings)
    [evaluated] = model.asked
    assert evaluated == served  # same system prompt, same top_k passages, same cut, same question
    # context_chars is wide enough for every passage: the block holds exactly top_k of them
    assert served[1]["content"].count("\n\n") == top_k  # top_k - 1 passage separators + the one before "Question:"
    assert rows[0].id == "q1" and rows[0].answer is not None
    # what the evaluate stage writes reads back as the same records
    metrics.write(tmp_path / "metrics.json")
    write_samples(tmp_path / "samples.jsonl", rows)
    assert EvaluationReport.read(tmp_path / "metrics.json") == metrics and read_samples(tmp_path / "samples.jsonl") == rows
    assert metrics.model_id == model.model_id and metrics.metric(params.gate.primary) is not None
