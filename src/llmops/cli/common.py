"""Helpers shared by the CLI command modules."""

from __future__ import annotations

import typer

from llmops.errors import LLMOpsError


def fail(exc: LLMOpsError) -> None:
    """Print an actionable error and exit with the error's code (see llmops.errors)."""
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(exc.exit_code)
