"""``llmops serve`` (the answer service) and ``llmops simulate`` (traffic against it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from llmops.cli.common import fail
from llmops.errors import LLMOpsError

app = typer.Typer()  # commands registered at top level by llmops.cli


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    project_dir: Annotated[Path, typer.Option("--project-dir", "-C", help="DVC workspace.")] = Path("."),
) -> None:
    """Serve answers: RAG over the index + the champion model; every answer goes to the generation log.

    POST /answer {"query": ...}; POST /feedback {"generation_id", "rating": -1|0|1, "correction"?};
    GET /healthz; GET /metrics (Prometheus).
    """
    try:
        from llmops.cli.pipeline import _prepare
        from llmops.config import load_params
        from llmops.serve.app import build_answerer, create_app

        settings = _prepare(project_dir)
        params = load_params("params.yaml")
        app_ = create_app(build_answerer(settings, params, Path(".")), max_body_bytes=params.serve.max_body_bytes)
    except LLMOpsError as exc:
        fail(exc)
        return
    import uvicorn

    uvicorn.run(app_, host=host, port=port, log_level="warning")


@app.command()
def simulate(
    questions: Annotated[Path, typer.Option(help="Eval-question JSONL with gold answers.")] = Path(
        "data/sample/eval_questions.jsonl"
    ),
    n: Annotated[int, typer.Option(help="How many questions to send.")] = 20,
    url: Annotated[str, typer.Option(help="Base URL of the running service.")] = "http://127.0.0.1:8080",
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
) -> None:
    """Send real questions to a running `llmops serve` and rate the answers against the gold answers."""
    from llmops.jsonl import read_jsonl
    from llmops.records import EvalQuestion
    from llmops.serve.simulate import simulate as run_simulation

    try:
        counts = run_simulation(read_jsonl(questions, EvalQuestion), url, n, seed=seed)
    except LLMOpsError as exc:
        fail(exc)
        return
    typer.echo(json.dumps(counts, indent=2))
