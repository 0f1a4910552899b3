"""Stage `evaluate`: retrieval, reference, heuristic, groundedness and judge metrics of the fine-tuned model
on the frozen gate set."""

from __future__ import annotations

import json

from llmops import workspace as ws
from llmops.evaluation.gate import check_score_field
from llmops.evaluation.suite import evaluate_model
from llmops.index.embed import make_embedder
from llmops.index.hybrid import open_retriever
from llmops.index.store import chroma_client
from llmops.jsonl import read_jsonl
from llmops.llm.cluster import on_cluster
from llmops.llm.trained import model_in
from llmops.records import EvalQuestion
from llmops.reports.evaluation import write_samples
from pipelines._stage import setup


def main() -> None:
    params, settings = setup("evaluate")
    embedder = make_embedder(params.index.embedder, params.index, settings)
    metrics, rows = evaluate_model(
        read_jsonl(params.evaluate.gate_questions, EvalQuestion),
        open_retriever(chroma_client(settings), embedder, params.index),
        on_cluster(model_in(ws.ADAPTER, settings, default_backend=params.finetune.backend), settings),  # LLMOPS_DASK_ADDRESS
        embedder,
        params,
        settings,
        progress=True,
    )
    check_score_field(rows, params.gate.score_field)  # a misnamed field fails here, not silently at the gate
    metrics.write(ws.EVAL_METRICS)
    write_samples(ws.EVAL_SAMPLES, rows)
    print(json.dumps({k: v for k, v in metrics.as_dict().items() if k != "slices"}, indent=2))


if __name__ == "__main__":
    main()
