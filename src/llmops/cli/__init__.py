"""The ``llmops`` command line.

Run ``llmops --help`` for the commands. Everything runs offline on the embedded defaults; point it at
OpenAI, S3, a Prefect server or a Chroma server with environment variables (see README, "Configuration").

Each area registers its commands from its own module (``llmops.cli.<area>``), so the entry point stays
a list of registrations.
"""

from __future__ import annotations

import typer

from llmops.cli import evaluation, finetune, index, models, monitoring, pii, pipeline, serve

app = typer.Typer(
    help="llmops: nightly LLMOps pipeline for a customer-support assistant "
    "(ingest -> PII removal -> DVC -> Chroma -> LoRA fine-tune -> evaluation -> drift).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Pipeline commands live at the top level: `llmops run nightly`, `llmops retrain`, `llmops status`, ...
app.registered_commands += pipeline.app.registered_commands + serve.app.registered_commands
app.add_typer(pipeline.run_app, name="run")
app.add_typer(pipeline.monitor_app, name="monitor")
app.registered_commands += monitoring.app.registered_commands  # `llmops report`; `monitor drift` joins monitor_app
# Area command groups: app.add_typer(<module>.app, name="<area>")
app.add_typer(index.app, name="index")
app.add_typer(evaluation.app, name="eval")
app.add_typer(models.app, name="models")
app.add_typer(finetune.app, name="finetune")
app.add_typer(pii.app, name="pii")


def main() -> None:  # pragma: no cover - console entry point
    app()
