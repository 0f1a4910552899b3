"""Stage `evaluate`: retrieval, reference, heuristic, groundedness and judge metrics of the fine-tuned model."""

from __future__ import annotations

import json

from llmops import workspace as ws
from llmops.evaluation.rag import evaluate_answers, evaluate_retrieval
from llmops.evaluation.suite import build_samples, default_evaluators, run_evaluators
from llmops.index.embed import make_embedder
from llmops.index.hybrid import open_retriever
from llmops.index.store import chroma_client
from llmops.jsonl import read_jsonl, write_json, write_jsonl
from llmops.llm.trained import trained_chat_model
from llmops.records import EvalQuestion
from pipelines._stage import setup


def main() -> None:
    params, settings = setup("evaluate")
    questions = read_jsonl(params.evaluate.questions, EvalQuestion)
    embedder = make_embedder(params.index.embedder, params.index, settings)
    retriever = open_retriever(chroma_client(settings), embedder, params.index)
    _, hits = evaluate_retrieval(questions, retriever, params.evaluate.k)  # the retrieval evaluator scores hits
    training = json.loads((ws.ADAPTER / "training.json").read_text(encoding="utf-8"))
    model = trained_chat_model(training.get("backend", "local"), training["model_id"], ws.ADAPTER, settings)
    answers, answered = evaluate_answers(questions, hits, model, params.evaluate, params.base, progress=True)
    evaluators = default_evaluators(params.evaluate, settings, embedder, local_model=model)
    metrics, rows, _ = run_evaluators(evaluators, build_samples(questions, hits, answered))
    metrics["answers"].update({k: v for k, v in answers.items() if k not in metrics["answers"]})  # latency, refusals
    write_json(ws.EVAL_METRICS, {"model_id": model.model_id, **metrics})
    write_jsonl(ws.EVAL_SAMPLES, rows)
    print(json.dumps({k: v for k, v in metrics.items() if k != "slices"}, indent=2))


if __name__ == "__main__":
    main()
