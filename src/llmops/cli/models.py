"""Model registry commands: ``llmops models list|promote|rollback``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from llmops.cli.common import fail
from llmops.config import Settings
from llmops.errors import LLMOpsError

if TYPE_CHECKING:
    from llmops.finetune.registry import Registry

app = typer.Typer(
    help="Model registry: champion/challenger records with lineage (LLMOPS_REGISTRY_URI, default <LLMOPS_HOME>/registry).",
    no_args_is_help=True,
)


def _registry() -> Registry:
    from llmops.finetune.registry import Registry

    return Registry.from_settings(Settings())


@app.command("list")
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help="Print every record with its lineage fields as JSON.")] = False,
) -> None:
    """Every registered model, newest last: status, backend, data revision, primary metric, reason."""
    try:
        reg = _registry()
        models = reg.models()
    except LLMOpsError as exc:
        fail(exc)
        return
    if as_json:
        typer.echo(json.dumps([m.lineage() for m in models], indent=2, default=str))
        return
    if not models:
        typer.echo("no models registered yet: run `llmops run nightly`")
        return
    typer.echo(f"{'status':<10} {'model_id':<44} {'backend':<7} {'data_rev':<12} {'token_f1':>8}  created / reason")
    for m in models:
        f1 = (m.evaluation.get("answers") or {}).get("token_f1", "")
        typer.echo(
            f"{m.status:<10} {m.model_id:<44} {m.backend:<7} {m.data_rev:<12} {f1!s:>8}  "
            f"{m.created_at:%Y-%m-%d %H:%M} / {m.reason}"
        )


@app.command()
def promote(
    model_id: Annotated[str, typer.Argument(help="The model to make champion (see `llmops models list`).")],
    reason: Annotated[str, typer.Option(help="Why the gate is bypassed: recorded in the model's events.")],
) -> None:
    """Make a registered model the champion by hand; the current champion is retired (rollback restores it)."""
    try:
        record = _registry().promote(model_id, reason=reason)
    except LLMOpsError as exc:
        fail(exc)
        return
    typer.echo(f"{record.model_id} is now champion")


@app.command()
def rollback(reason: Annotated[str, typer.Option(help="Why: recorded on both models.")]) -> None:
    """Reinstate the previous champion; the current champion is marked rejected."""
    try:
        record = _registry().rollback(reason=reason)
    except LLMOpsError as exc:
        fail(exc)
        return
    typer.echo(f"rolled back: {record.model_id} is champion again")
