"""Fine-tuning commands: ``llmops finetune validate|cancel``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from llmops.cli.common import fail
from llmops.config import Settings, load_params
from llmops.errors import LLMOpsError

app = typer.Typer(help="Fine-tuning data checks and OpenAI job control.", no_args_is_help=True)

Params = Annotated[Path, typer.Option("--params", help="params.yaml to read the finetune section from.")]


@app.command()
def validate(
    train: Annotated[Path, typer.Argument(help="Chat JSONL to check (default: the trainset stage's train.jsonl).")] = Path(
        "data/trainset/train.jsonl"
    ),
    validation: Annotated[Path, typer.Option(help="Validation JSONL (format checks only).")] = Path(
        "data/trainset/validation.jsonl"
    ),
    params: Params = Path("params.yaml"),
) -> None:
    """Run every pre-training check (format, special tokens, tokens vs context, cost vs budget) and print the report."""
    from llmops.finetune.backend import validate_for_training

    try:
        cfg = load_params(params).finetune
        report = validate_for_training(train, validation, cfg, Settings().base_model_cache)
    except LLMOpsError as exc:
        fail(exc)
        return
    typer.echo(json.dumps(report.as_dict(), indent=2))


@app.command()
def cancel(
    job_id: Annotated[str, typer.Argument(help="The OpenAI fine-tuning job id (ftjob-...), see the run log.")],
    params: Params = Path("params.yaml"),
) -> None:
    """Cancel a running OpenAI fine-tuning job; its persisted state is marked so no run resumes it."""
    from llmops.finetune.openai_jobs import OpenAIFineTuner, openai_client

    try:
        settings = Settings()
        tuner = OpenAIFineTuner(openai_client(settings), load_params(params).finetune, settings.path("finetune", "openai-jobs"))
        tuner.cancel(job_id)
    except LLMOpsError as exc:
        fail(exc)
