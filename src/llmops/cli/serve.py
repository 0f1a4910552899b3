"""``llmops serve`` (the answer service) and ``llmops simulate`` (traffic against it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from llmops.cli.common import fail
from llmops.errors import LLMOpsError

app = typer.Typer()  # commands registered at top level by llmops.cli


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def bind_address(host: str, keyed: bool, no_auth: bool, anonymous_role: str) -> tuple[str, str | None]:
    """The interface to bind and what to tell the operator: without keys, loopback only unless --no-auth."""
    if no_auth:
        return host, f"--no-auth: no API keys on {host}; every caller is 'anonymous' (role {anonymous_role})"
    if keyed:
        return host, None
    moved = "" if host in LOOPBACK else f" (not {host})"
    return "127.0.0.1", (
        f"no API keys (LLMOPS_API_KEYS / LLMOPS_API_KEYS_FILE): serving on 127.0.0.1 only{moved}, every caller is "
        f"'anonymous' (role {anonymous_role}); configure keys, or pass --no-auth to serve other hosts without them"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind (non-loopback needs API keys or --no-auth).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    project_dir: Annotated[Path, typer.Option("--project-dir", "-C", help="DVC workspace.")] = Path("."),
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Serve without API keys on any interface (every caller is 'anonymous').")
    ] = False,
) -> None:
    """Serve answers: RAG over the index + the champion model; every answer goes to the generation log.

    POST /answer {"query": ...}; POST /feedback {"generation_id", "rating": -1|0|1, "correction"?};
    GET /healthz; GET /metrics (Prometheus). With LLMOPS_API_KEYS or LLMOPS_API_KEYS_FILE set
    (`name\\[@role]:secret`, role user or reviewer), /answer and /feedback need `Authorization: Bearer <secret>`.
    Without keys the service binds to loopback only, unless --no-auth.
    """
    try:
        from llmops.cli.pipeline import _prepare
        from llmops.config import load_params
        from llmops.serve.app import build_answerer, create_app
        from llmops.serve.auth import load_keys

        settings = _prepare(project_dir)
        params = load_params("params.yaml")
        keys = None if no_auth else load_keys(settings)
        host, notice = bind_address(host, keys is not None, no_auth, params.serve.anonymous_role)
        if notice:
            typer.secho(notice, fg="yellow", err=True)
        else:
            typer.echo(f"API keys: {', '.join(keys.names) if keys else ''}", err=True)
        app_ = create_app(build_answerer(settings, params, Path(".")), keys=keys)
    except LLMOpsError as exc:
        fail(exc)
        return
    import uvicorn

    typer.echo(f"serving on http://{host}:{port}", err=True)
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@app.command()
def simulate(
    questions: Annotated[Path, typer.Option(help="Eval-question JSONL with gold answers.")] = Path(
        "data/sample/eval_questions.jsonl"
    ),
    n: Annotated[int, typer.Option(help="How many questions to send.")] = 20,
    url: Annotated[str, typer.Option(help="Base URL of the running service.")] = "http://127.0.0.1:8080",
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    api_key: Annotated[
        str | None, typer.Option(envvar="LLMOPS_API_KEY", help="Secret of a service API key (a reviewer's to send corrections).")
    ] = None,
) -> None:
    """Send real questions to a running `llmops serve` and rate the answers against the gold answers."""
    from llmops.jsonl import read_jsonl
    from llmops.records import EvalQuestion
    from llmops.serve.simulate import simulate as run_simulation

    try:
        counts = run_simulation(read_jsonl(questions, EvalQuestion), url, n, seed=seed, api_key=api_key)
    except LLMOpsError as exc:
        fail(exc)
        return
    typer.echo(json.dumps(counts, indent=2))
