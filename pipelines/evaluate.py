"""Stage `evaluate`: retrieval metrics over the index and answer metrics of the fine-tuned model."""

from __future__ import annotations

import json

from llmops import workspace as ws
from llmops.evaluation.rag import evaluate_answers, evaluate_retrieval
from llmops.index.embed import make_embedder
from llmops.index.hybrid import open_retriever
from llmops.index.store import chroma_client
from llmops.jsonl import read_jsonl, write_json, write_jsonl
from llmops.llm.local import LocalChatModel
from llmops.records import EvalQuestion
from pipelines._stage import setup


def main() -> None:
    params, settings = setup("evaluate")
    questions = read_jsonl(params.evaluate.questions, EvalQuestion)
    embedder = make_embedder(params.index.embedder, params.index, settings)
    retriever = open_retriever(chroma_client(settings), embedder, params.index)
    retrieval, hits = evaluate_retrieval(questions, retriever, params.evaluate.k)
    training = json.loads((ws.ADAPTER / "training.json").read_text(encoding="utf-8"))
    model = LocalChatModel(settings.base_model_cache, ws.ADAPTER, model_id=training["model_id"])
    answers, samples = evaluate_answers(questions, hits, model, params.evaluate, params.base, progress=True)
    metrics = {"model_id": model.model_id, "retrieval": retrieval, "answers": answers}
    write_json(ws.EVAL_METRICS, metrics)
    write_jsonl(ws.EVAL_SAMPLES, samples)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
