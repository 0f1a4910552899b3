"""Index commands: refresh the knowledge-base index, list its versions, roll back, tune the embedder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel

from llmops.cli.common import fail
from llmops.errors import LLMOpsError

M = TypeVar("M", bound=BaseModel)

app = typer.Typer(
    help="Vector index: incremental refresh into versioned Chroma collections behind a serving alias.",
    no_args_is_help=True,
)

ParamsFile = Annotated[Path, typer.Option("--params", help="params.yaml to read the `index` section from.")]
Collection = Annotated[str | None, typer.Option("--collection", help="Serving alias (default: index.collection in params.yaml).")]


def load_edge(params_file: Path, collection: str | None) -> tuple[Any, Any]:
    """Params + settings, parsed once here; offline environment for local models."""
    from llmops.config import Settings, load_params
    from llmops.runtime import prepare_environment

    params = load_params(params_file)
    if collection:
        params.index.collection = collection
    settings = Settings()
    prepare_environment(settings)
    return params, settings


def read_input(path: Path, model: type[M]) -> list[M]:
    """A user-supplied JSONL file, validated line by line; an error names the file, line and field."""
    from pydantic import ValidationError

    from llmops.errors import DataContractError

    if not path.is_file():
        raise DataContractError(f"{path} does not exist (expected a JSONL file)")
    out = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                out.append(model.model_validate_json(line))
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(x) for x in err["loc"]) or "line"
                raise DataContractError(
                    f"{path}:{line_no}: {where}: {err['msg']} (expected one {model.__name__} per line, "
                    f"fields {', '.join(model.model_fields)})"
                ) from exc
    if not out:
        raise DataContractError(f"{path} holds no records")
    return out


def echo_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


@app.command()
def refresh(
    docs: Annotated[Path, typer.Option("--docs", help="Documents JSONL: {doc_id, text, title?} per line.")],
    collection: Collection = None,
    embedder: Annotated[
        str | None, typer.Option(help="Embedder: model name, model directory or openai:<model> (default: params).")
    ] = None,
    params_file: ParamsFile = Path("params.yaml"),
) -> None:
    """Embed only new/changed chunks into a new version, validate it, then switch the alias (prints JSON)."""
    from llmops.index.embed import make_embedder
    from llmops.index.refresh import refresh_index
    from llmops.index.store import chroma_client
    from llmops.records import Document

    try:
        params, settings = load_edge(params_file, collection)
        documents = read_input(docs, Document)
        emb = make_embedder(embedder or params.index.embedder, params.index, settings)
        result, _ = refresh_index(documents, chroma_client(settings), emb, params.index, progress=True)
        echo_json(result.as_dict())
    except LLMOpsError as exc:
        fail(exc)


@app.command()
def rollback(collection: Collection = None, params_file: ParamsFile = Path("params.yaml")) -> None:
    """Serve the previous index version again (kept by index.retention)."""
    from llmops.index.store import chroma_client
    from llmops.index.versions import rollback_alias

    try:
        params, settings = load_edge(params_file, collection)
        record = rollback_alias(chroma_client(settings), params.index.collection)
        echo_json({"alias": record.alias, "serving": record.serving, "history": record.history})
    except LLMOpsError as exc:
        fail(exc)


@app.command()
def versions(collection: Collection = None, params_file: ParamsFile = Path("params.yaml")) -> None:
    """List the versions of an alias: serving, previous, unpublished (left by a failed refresh)."""
    from llmops.index.store import chroma_client
    from llmops.index.versions import describe_versions

    try:
        params, settings = load_edge(params_file, collection)
        echo_json(describe_versions(chroma_client(settings), params.index.collection))
    except LLMOpsError as exc:
        fail(exc)


@app.command()
def tune(
    docs: Annotated[Path, typer.Option("--docs", help="Documents JSONL the pairs' gold chunks come from.")],
    train: Annotated[Path, typer.Option("--train", help="Training questions JSONL: {id, query, gold_doc_ids, answer?}.")],
    held_out: Annotated[Path, typer.Option("--eval", help="Held-out questions JSONL (never trained on).")],
    feedback: Annotated[Path | None, typer.Option(help="Generation log JSONL; rating 1 events become pairs too.")] = None,
    rebuild: Annotated[bool, typer.Option(help="If the tuned embedder wins, rebuild the index with it.")] = False,
    collection: Collection = None,
    params_file: ParamsFile = Path("params.yaml"),
) -> None:
    """Fine-tune the local embedder (MultipleNegativesRankingLoss), compare base vs tuned on the held-out
    questions, register it only if it wins, and optionally rebuild the index with it (prints JSON)."""
    from llmops.finetune.embedder import tune_embedder
    from llmops.index.chunk import chunk_documents
    from llmops.index.embed import LocalEmbedder
    from llmops.index.refresh import refresh_index
    from llmops.index.store import chroma_client
    from llmops.records import Document, EvalQuestion, FeedbackEvent

    try:
        params, settings = load_edge(params_file, collection)
        documents = read_input(docs, Document)
        cfg = params.index
        chunks = chunk_documents(documents, cfg.chunk_words, cfg.chunk_overlap, cfg.chunk_mode)
        result = tune_embedder(
            chunks,
            read_input(train, EvalQuestion),
            read_input(held_out, EvalQuestion),
            cfg.embedder,
            settings.path("embedders"),
            cfg.tune,
            feedback=read_input(feedback, FeedbackEvent) if feedback else (),
            seed=params.base.seed,
            progress=True,  # tqdm on stderr; stdout stays the JSON summary
        )
        out: dict[str, Any] = result.as_dict()
        if result.promoted and rebuild:
            refreshed, _ = refresh_index(documents, chroma_client(settings), LocalEmbedder(result.tuned_path), cfg)
            out["index"] = refreshed.as_dict()
        echo_json(out)
    except LLMOpsError as exc:
        fail(exc)
