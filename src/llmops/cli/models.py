"""Model registry commands: ``llmops models list|approve|reject|promote|rollback``."""

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
    typer.echo(f"{'status':<10} {'model_id':<44} {'backend':<7} {'data_rev':<12} {'token_f1':>8} {'sem_sim':>8}  gate / reason")
    for m in models:
        answers = m.evaluation.get("answers") or {}
        f1, sim = answers.get("token_f1", "-"), answers.get("semantic_similarity", "-")
        gate = m.gate_evidence
        verdict = (
            f"{gate.get('decision')} {gate.get('mean_diff', 0):+.4f} CI {gate.get('ci')} n={gate.get('paired_questions')}"
            if "ci" in gate
            else (gate.get("decision") or "")
        )
        typer.echo(
            f"{m.status:<10} {m.model_id:<44} {m.backend:<7} {m.data_rev:<12} {f1!s:>8} {sim!s:>8}  "
            f"{verdict + ' / ' if verdict else ''}{m.reason}"
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


def _verdict(model_id: str, reason: str, *, approve: bool) -> None:
    from llmops.runs.promotion import resume_approval

    try:
        record = _registry().decide_pending(model_id, approve=approve, reason=reason)
    except LLMOpsError as exc:
        fail(exc)
        return
    typer.echo(f"{record.model_id} is now {record.status}")
    note = resume_approval(record, approve=approve, reason=reason)
    if note:
        typer.echo(note)


@app.command()
def approve(
    model_id: Annotated[str, typer.Argument(help="A model the gate passed that waits for approval (status pending).")],
    reason: Annotated[str, typer.Option(help="Why: recorded in the model's events.")] = "approved",
) -> None:
    """Approve a pending model (gate.require_approval): it becomes champion; a flow paused on it resumes."""
    _verdict(model_id, reason, approve=True)


@app.command()
def reject(
    model_id: Annotated[str, typer.Argument(help="A model waiting for approval (status pending).")],
    reason: Annotated[str, typer.Option(help="Why: recorded in the model's events.")] = "rejected",
) -> None:
    """Reject a pending model: it is marked rejected and never served; a flow paused on it resumes."""
    _verdict(model_id, reason, approve=False)
