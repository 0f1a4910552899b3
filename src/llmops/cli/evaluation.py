"""Evaluation commands (``llmops eval ...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmops.cli.common import fail
from llmops.cli.index import echo_json, load_edge, read_input
from llmops.errors import LLMOpsError

app = typer.Typer(help="Evaluate retrieval and models on question sets.", no_args_is_help=True)


@app.command()
def retrieval(
    docs: Annotated[Path, typer.Option("--docs", help="Documents JSONL: {doc_id, text, title?} per line.")],
    questions: Annotated[Path, typer.Option("--questions", help="Questions JSONL: {id, query, gold_doc_ids} per line.")],
    embedder: Annotated[
        str | None,
        typer.Option("--embedder", help="Model name, model directory or openai:<model> (default: index.embedder)."),
    ] = None,
    params_file: Annotated[Path, typer.Option("--params", help="params.yaml (index section).")] = Path("params.yaml"),
) -> None:
    """Index the documents (incrementally, under alias `retrieval-eval`) and print recall@1/5/10, MRR and
    nDCG@10 for the configured retriever, and under `dense`, `bm25` and `hybrid` for each one alone."""
    from llmops.evaluation.retrievers import evaluate_corpus
    from llmops.index.embed import make_embedder
    from llmops.index.store import chroma_client
    from llmops.records import Document, EvalQuestion

    try:
        params, settings = load_edge(params_file, None)
        documents = read_input(docs, Document)
        qs = read_input(questions, EvalQuestion)
        emb = make_embedder(embedder or params.index.embedder, params.index, settings)
        echo_json(evaluate_corpus(documents, qs, chroma_client(settings), emb, params.index, progress=True))
    except LLMOpsError as exc:
        fail(exc)
