"""Monitoring commands: ``llmops monitor drift`` (two conversation files) and ``llmops report`` (trend page)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from llmops.cli.common import fail
from llmops.cli.pipeline import monitor_app
from llmops.errors import DataContractError, DriftDetected, LLMOpsError

app = typer.Typer()  # `report` is registered at top level by llmops.cli


def _read_conversations(path: Path, name: str) -> list:
    from llmops.jsonl import read_jsonl
    from llmops.records import Conversation

    if not path.is_file():
        raise DataContractError(f"--{name} {path}: no such file; pass a conversation JSONL file (one Conversation a line)")
    return read_jsonl(path, Conversation)


@monitor_app.command("drift")
def drift(
    reference: Annotated[Path, typer.Option(help="Reference window: conversation JSONL.")],
    current: Annotated[Path, typer.Option(help="Current window: conversation JSONL.")],
    out: Annotated[Path, typer.Option(help="Directory for report.html (Evidently) and drift.json.")],
    fail_on_drift: Annotated[bool, typer.Option(help="Exit with code 3 when drift is detected (for CI / cron).")] = False,
    embeddings: Annotated[
        bool, typer.Option(help="Also test query embedding drift with the index embedder (loads the model).")
    ] = False,
    text_content: Annotated[
        bool | None, typer.Option(help="Domain-classifier drift on the raw text (default: monitor.text_content_drift).")
    ] = None,
    params: Annotated[Path, typer.Option(help="params.yaml for the thresholds (monitor section); defaults if absent.")] = Path(
        "params.yaml"
    ),
) -> None:
    """Compare two conversation files; write report.html + drift.json; print a JSON summary."""
    from llmops.config import Params, load_params
    from llmops.monitoring.drift import drift_report

    try:
        loaded = load_params(params) if params.exists() else Params()
        cfg = loaded.monitor
        if text_content is not None:
            cfg = cfg.model_copy(update={"text_content_drift": text_content})
        embedder = None
        if embeddings:
            from llmops.index.embed import LocalEmbedder

            embedder = LocalEmbedder(loaded.index.embedder, batch_size=loaded.index.batch_size)
        result = drift_report(
            _read_conversations(reference, "reference"), _read_conversations(current, "current"), cfg, out, embedder=embedder
        )
        summary = {
            "drift_detected": result.drift_detected,
            "drifted_signals": result.drifted_signals,
            "drift_share": result.drift_share,
            "drift_share_threshold": result.drift_share_threshold,
            "new_vocab_share": result.new_vocab_share,
            "embeddings": {k: v.score for k, v in result.embeddings.items()},
            "rows": {"reference": result.reference_rows, "current": result.current_rows},
            "report": str(out / "report.html"),
        }
        typer.echo(json.dumps(summary, indent=2))
        if fail_on_drift and result.drift_detected:
            raise DriftDetected(f"drift detected in {', '.join(result.drifted_signals)} (see {out / 'report.html'})")
    except LLMOpsError as exc:
        fail(exc)


@app.command()
def report(
    out: Annotated[Path | None, typer.Option(help="Where to write the page (default: <LLMOPS_HOME>/trend.html).")] = None,
    history: Annotated[
        str | None, typer.Option(help="History store: directory or s3://bucket/prefix (default: LLMOPS_HISTORY_URI).")
    ] = None,
) -> None:
    """Render one self-contained HTML page: metric and drift trends across runs, links to every report."""
    from llmops.config import Settings
    from llmops.monitoring.history import History
    from llmops.monitoring.trend import render_trend

    try:
        settings = Settings()
        store = History.from_settings(settings, history)
        entries = store.entries()
        page = render_trend(entries, out or settings.path("trend.html"))
    except LLMOpsError as exc:
        fail(exc)
        return
    typer.echo(json.dumps({"page": str(page), "runs": len(entries), "history": store.uri}))
