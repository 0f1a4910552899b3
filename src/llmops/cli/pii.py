"""PII commands: redact a JSONL file, scan any output for leaks, evaluate on a gold set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from llmops.cli.common import fail
from llmops.errors import DataContractError, LLMOpsError

app = typer.Typer(help="PII removal: redact files, scan outputs for leaks, evaluate against gold spans.", no_args_is_help=True)

ParamsFile = Annotated[Path, typer.Option("--params", help="params.yaml whose `redact:` section configures detection.")]


def _cfg(params: Path):
    from llmops.config import RedactParams, load_params

    return load_params(params).redact if params.exists() else RedactParams()


@app.command("scan")
def scan(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories: JSONL/JSON by field, other text by line.")],
    params: ParamsFile = Path("params.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="Print findings as JSON lines.")] = False,
) -> None:
    """Fail (exit 1) when residual personal data (redact.scan_entities) is found in any of PATHS."""
    from llmops.pii.scan import assert_clean, scan_path

    try:
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise DataContractError(f"{', '.join(missing)} does not exist: pass files or directories to scan")
        cfg = _cfg(params)
        findings = [f for path in paths for f in scan_path(path, cfg)]
        if as_json:
            for f in findings:
                typer.echo(json.dumps(f.as_dict()))
        what = ", ".join(str(p) for p in paths)
        assert_clean(findings, what)
        typer.echo(f"clean: no personal data found in {what}")
    except LLMOpsError as exc:
        fail(exc)


@app.command("eval")
def evaluate(
    gold: Annotated[Path, typer.Option("--gold", help="presidio-research gold file (JSON list or JSONL).")],
    params: ParamsFile = Path("params.yaml"),
    limit: Annotated[int, typer.Option(help="Evaluate on the first N samples only (0 = all).")] = 0,
    engine: Annotated[
        str, typer.Option(help="fast (ours) | presidio (AnalyzerEngine + ours) | vanilla (defaults only).")
    ] = "fast",
    ignore: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore",
            help="Also leave out this gold type (repeatable), e.g. SOCIAL_HANDLE and URL on a tweet set annotated "
            "for names and places: predictions that overlap only such spans are not counted as false positives.",
        ),
    ] = None,
) -> None:
    """Print recall, precision, F2 (entity-agnostic overlap), docs/s and a per-entity breakdown as JSON."""
    from llmops.pii.evaluate import IGNORED_TYPES, load_gold
    from llmops.pii.evaluate import evaluate as run_eval

    try:
        samples = load_gold(gold)
        samples = samples[:limit] if limit else samples
        detect = make_detector(_cfg(params), engine)
        ignored = (*IGNORED_TYPES, *(ignore or ()))
        result = {k: v for k, v in run_eval(samples, detect, ignored).items() if k != "doc_counts"}
        typer.echo(json.dumps({"engine": engine, **result}, indent=2))
    except LLMOpsError as exc:
        fail(exc)


def make_detector(cfg, engine: str):
    """A ``texts -> spans`` function for an engine name (warmed up, so timing excludes model loading)."""
    from llmops.pii.detect import FastAnalyzer, build_analyzer
    from llmops.pii.spans import Span

    if engine == "fast":
        analyzer = FastAnalyzer(cfg)
        analyzer.warm_up()
        return analyzer.analyze
    if engine in {"presidio", "vanilla"}:
        presidio = build_analyzer(cfg.spacy_model, cfg.language, own=engine == "presidio")
        presidio.analyze("warm up John", language=cfg.language)

        def detect(texts: list[str]) -> list[list[Span]]:  # one doc at a time, as a user would call it
            return [
                [Span(r.entity_type, r.start, r.end, r.score) for r in presidio.analyze(t, language=cfg.language)] for t in texts
            ]

        return detect
    raise typer.BadParameter(f"unknown engine {engine!r}: use fast, presidio or vanilla")


@app.command("redact")
def redact(
    in_path: Annotated[Path, typer.Option("--in", help='JSONL of conversations or {"text": ...} lines.')],
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the redacted JSONL.")],
    params: ParamsFile = Path("params.yaml"),
) -> None:
    """Pseudonymise a JSONL file: conversations (same value -> same placeholder per conversation) or text lines."""
    from llmops.config import Settings
    from llmops.pii.redact import Redactor
    from llmops.pii.textfile import redact_file

    try:
        cfg = _cfg(params)
        counts = redact_file(in_path, out_path, Redactor.from_settings(cfg, Settings()))
        typer.echo(json.dumps(counts))
    except LLMOpsError as exc:
        fail(exc)


@app.command("purge")
def purge(
    project_dir: Annotated[Path, typer.Option("--project-dir", "-C", help="DVC workspace (dvc.yaml, dvc.lock).")] = Path("."),
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be deleted.")] = False,
) -> None:
    """Delete the personal data kept before the redaction boundary: data/raw, data/clean, data/quarantine,
    data/redact-quarantine, data/feedback-quarantine, data/trainset-quarantine and their objects in the local
    DVC cache (older versions included, through the dvc.lock copies of past runs), and the ingest/clean record
    caches under LLMOPS_HOME. The DVC remote never holds them. The next run ingests the sources again."""
    from llmops.config import Settings
    from llmops.data.purge import purge_private

    try:
        if not (project_dir / "dvc.yaml").exists():
            raise LLMOpsError(f"{project_dir} has no dvc.yaml: run from the project root or pass --project-dir")
        settings = Settings()
        locks = sorted(settings.path("runs").glob("*.dvc.lock"))
        plan = purge_private(project_dir, locks, dry_run=True, state_dir=settings.home_dir)
        typer.echo(f"{', '.join(plan.paths) or 'no private outputs'}; {plan.objects} cache objects ({plan.bytes} bytes)")
        if dry_run or (not yes and not typer.confirm("Delete them?")):
            return
        typer.echo(json.dumps(purge_private(project_dir, locks, state_dir=settings.home_dir).as_dict()))
    except LLMOpsError as exc:
        fail(exc)


@app.command("quarantine")
def quarantine(
    path: Annotated[
        Path,
        typer.Argument(
            help="A quarantine file (data/quarantine, data/redact-quarantine, data/feedback-quarantine, "
            "data/trainset-quarantine: *.jsonl)."
        ),
    ],
    reveal: Annotated[
        bool, typer.Option("--reveal", help="Print each held record (sealed ones need LLMOPS_PII_VAULT_KEY).")
    ] = False,
) -> None:
    """List held records with their source, line and reason; --reveal prints the records themselves (personal data)."""
    from llmops.config import Settings
    from llmops.data.quarantine import original, read_quarantine

    try:
        if not path.exists():
            raise DataContractError(f"{path} does not exist: pass a quarantine JSONL file")
        key = Settings().pii_vault_key
        records = read_quarantine(path, key.get_secret_value() if reveal and key else None)
        for r in records:
            typer.echo(f"{r.source}:{r.line_no}: {r.reason}{' [sealed]' if r.sealed else ''}")
            if reveal:
                typer.echo("  " + original(r).decode("utf-8", errors="replace"))
        typer.echo(f"{len(records)} held record(s)", err=True)
    except LLMOpsError as exc:
        fail(exc)
