"""A sentence-transformers BERT model with mean pooling (all-MiniLM-L6-v2, and the embedder the fine-tune
stage tunes from it), run on torch directly, or on numpy for a few texts.

Why: importing sentence-transformers costs ~5 CPU s per process (it pulls transformers, torch's compiler
stack, scikit-learn and SciPy) against ~1 s for torch alone, and every nightly stage that embeds anything pays
it again: on a night with 1% new data that was more than half of the monitor's and the training set's work
(README "Incremental runs"). The encoder below is the same computation with the same weights and the same
torch kernels (linear, layer norm, exact GELU, scaled dot-product attention), tokenised by the model's own
``tokenizer.json``: ``tests/unit/test_embed_bert.py`` keeps its vectors equal to sentence-transformers' within
float rounding. Any other model layout (another architecture, another pooling, a dense head) returns ``None``
from :func:`load_bert_encoder` and is run by sentence-transformers itself.

A night embeds a few new texts (questions to retrieve context for, a small batch to monitor), and importing
torch for them cost more than embedding them: within :data:`NUMPY_TOKEN_BUDGET` tokens, in a process that has
not imported torch, the same forward pass runs in numpy (2-D matrix products, an erf GELU exact to float32
rounding); its vectors are held to sentence-transformers' by the same tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from llmops.jsonl import read_json

# The module layout of a plain mean-pooled sentence-transformers model (normalising is ours to do anyway), as
# sentence-transformers before 6 (the packaged model) and from 6 on (what the fine-tune stage saves) name it.
_TRANSFORMER = {"sentence_transformers.models.Transformer", "sentence_transformers.base.modules.transformer.Transformer"}
_POOLING = {"sentence_transformers.models.Pooling", "sentence_transformers.sentence_transformer.modules.pooling.Pooling"}
_NORMALIZE = {"sentence_transformers.models.Normalize", "sentence_transformers.base.modules.normalize.Normalize"}


def _mean_only(pooling: dict[str, Any]) -> bool:
    if "pooling_mode" in pooling:  # sentence-transformers >= 6
        return pooling["pooling_mode"] == "mean"
    modes = {k: v for k, v in pooling.items() if k.startswith("pooling_mode_")}
    return bool(modes.pop("pooling_mode_mean_tokens", False)) and not any(modes.values())


def _max_length(st_config: dict[str, Any], tokenizer_config: dict[str, Any], config: dict[str, Any]) -> int:
    """As sentence-transformers: its own ``max_seq_length``, else the tokenizer's ``model_max_length``
    capped at the model's position embeddings."""
    if st_config.get("max_seq_length"):
        return int(st_config["max_seq_length"])
    return min(int(tokenizer_config.get("model_max_length") or 1 << 30), int(config["max_position_embeddings"]))


def _float32_weights(path: Path) -> bool:
    """Are the weights float32 (the safetensors header's dtypes; ``position_ids`` are int64)? Half-precision
    checkpoints go to sentence-transformers, which knows how to run them."""
    with path.open("rb") as fh:
        header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
    return all(v["dtype"] in ("F32", "I64") for k, v in header.items() if k != "__metadata__")


def _plain_bert(path: Path) -> dict[str, Any] | None:
    """The BERT config of a sentence-transformers directory this module can run, else ``None``."""
    try:
        modules = [(m["type"], m["path"]) for m in json.loads((path / "modules.json").read_text(encoding="utf-8"))]
        config = read_json(path / "config.json")
        st_config = read_json(path / "sentence_bert_config.json")
        pooling = read_json(path / modules[1][1] / "config.json") if len(modules) > 1 else {}
        plain = (
            len(modules) >= 2
            and modules[0][0] in _TRANSFORMER
            and modules[1][0] in _POOLING
            and all(m in _NORMALIZE for m, _ in modules[2:])
            and config.get("model_type") == "bert"
            and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and _mean_only(pooling)
            and not st_config.get("do_lower_case")
            and st_config.get("transformer_task", "feature-extraction") == "feature-extraction"
            and st_config.get("module_output_name", "token_embeddings") == "token_embeddings"
            and (path / "tokenizer.json").is_file()
            and (path / "model.safetensors").is_file()
            and _float32_weights(path / "model.safetensors")
        )
        if not plain:
            return None
        return {**config, "max_seq_length": _max_length(st_config, read_json(path / "tokenizer_config.json"), config)}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


# Until a process has run this many (padded) tokens through the model, and while it has not imported torch,
# the forward pass runs in numpy: importing torch costs ~1 CPU s, numpy's forward ~0.3 ms a token more than
# torch's (2.2x on one core). So a night's few new texts (questions to retrieve context for, a small batch to
# monitor) skip the import, and larger inputs lose at most ~0.6 CPU s before torch takes over.
NUMPY_TOKEN_BUDGET = 2048


def _gelu(x: Any) -> Any:
    """The erf GELU of a float32 array, in place, with erf by Abramowitz & Stegun 7.1.26 (numpy has no erf):
    absolute error under 5e-7 in float32, a unit in the last place or so; sentence vectors stay within 2.3e-7
    of torch's exact GELU (tested against sentence-transformers' within 1e-5)."""
    import numpy as np

    f32 = np.float32
    z = np.abs(x) * f32(0.7071067811865476)
    t = f32(1) / (f32(1) + f32(0.3275911) * z)
    poly = (
        (((f32(1.061405429) * t - f32(1.453152027)) * t + f32(1.421413741)) * t - f32(0.284496736)) * t + f32(0.254829592)
    ) * t
    erf = f32(1) - poly * np.exp(-z * z)
    erf = np.copysign(erf, x)
    x *= f32(0.5) * (f32(1) + erf)
    return x


class BertEncoder:
    """Mean-pooled, L2-normalised sentence vectors of a BERT model on the CPU (inference only): numpy for the
    first few texts of a process without torch (:data:`NUMPY_TOKEN_BUDGET`), torch otherwise; the same vectors
    within float rounding either way."""

    def __init__(self, path: Path, config: dict[str, Any]) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.weights = {k.removeprefix("bert."): v for k, v in load_file(str(path / "model.safetensors")).items()}
        self._tensors: dict[str, Any] | None = None  # the same weights as torch tensors (shared memory), on first use
        self.numpy_tokens = 0  # padded tokens this encoder ran in numpy (see NUMPY_TOKEN_BUDGET)
        self.hidden, self.heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        self.layers, self.eps = int(config["num_hidden_layers"]), float(config["layer_norm_eps"])
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=int(config["max_seq_length"]))
        self.tokenizer.no_padding()

    @property
    def dimension(self) -> int:
        return self.hidden

    # numpy: the same computation as the torch path below, on 2-D (tokens x features) matrices

    def _np_linear(self, x: Any, name: str) -> Any:
        return x @ self.weights[f"{name}.weight"].T + self.weights[f"{name}.bias"]

    def _np_norm(self, x: Any, name: str) -> Any:
        import numpy as np

        centred = x - x.mean(-1, keepdims=True)
        scale = np.sqrt((centred * centred).mean(-1, keepdims=True) + np.float32(self.eps))
        return centred / scale * self.weights[f"{name}.weight"] + self.weights[f"{name}.bias"]

    def _forward_numpy(self, ids: Any, mask: Any) -> Any:
        import numpy as np

        w, (batch, length) = self.weights, ids.shape
        heads, size = self.heads, self.hidden // self.heads
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        ).reshape(batch * length, self.hidden)
        x = self._np_norm(x, "embeddings.LayerNorm")
        padding = np.where(mask[:, None, None, :] == 0, np.float32(-1e30), np.float32(0))
        scale = np.float32(1 / np.sqrt(size))
        for i in range(self.layers):
            layer = f"encoder.layer.{i}"
            q, k, v = (
                self._np_linear(x, f"{layer}.attention.self.{n}").reshape(batch, length, heads, size).transpose(0, 2, 1, 3)
                for n in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 1, 3, 2) * scale + padding
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            attended = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, self.hidden)
            x = self._np_norm(
                self._np_linear(attended, f"{layer}.attention.output.dense") + x, f"{layer}.attention.output.LayerNorm"
            )
            inner = _gelu(self._np_linear(x, f"{layer}.intermediate.dense"))
            x = self._np_norm(self._np_linear(inner, f"{layer}.output.dense") + x, f"{layer}.output.LayerNorm")
        weights = mask[..., None].astype(np.float32)
        pooled = (x.reshape(batch, length, self.hidden) * weights).sum(1) / np.maximum(weights.sum(1), np.float32(1e-9))
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-12))

    # torch

    def _tensor(self, name: str) -> Any:
        if self._tensors is None:
            import torch

            self._tensors = {k: torch.from_numpy(v) for k, v in self.weights.items()}
        return self._tensors[name]

    def _linear(self, x: Any, name: str) -> Any:
        import torch

        return torch.nn.functional.linear(x, self._tensor(f"{name}.weight"), self._tensor(f"{name}.bias"))

    def _norm(self, x: Any, name: str) -> Any:
        import torch

        weight, bias = self._tensor(f"{name}.weight"), self._tensor(f"{name}.bias")
        return torch.nn.functional.layer_norm(x, (self.hidden,), weight, bias, self.eps)

    def _forward(self, ids: Any, mask: Any) -> Any:
        import torch

        F = torch.nn.functional
        ids, mask = torch.from_numpy(ids), torch.from_numpy(mask)
        batch, length = ids.shape
        x = (
            self._tensor("embeddings.word_embeddings.weight")[ids]
            + self._tensor("embeddings.position_embeddings.weight")[:length]
            + self._tensor("embeddings.token_type_embeddings.weight")[0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        padding = torch.zeros(batch, 1, 1, length).masked_fill(mask[:, None, None, :] == 0, torch.finfo(x.dtype).min)
        for i in range(self.layers):
            layer = f"encoder.layer.{i}"
            q, k, v = (
                self._linear(x, f"{layer}.attention.self.{n}").view(batch, length, self.heads, -1).transpose(1, 2)
                for n in ("query", "key", "value")
            )
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=padding).transpose(1, 2).reshape(x.shape)
            x = self._norm(self._linear(attended, f"{layer}.attention.output.dense") + x, f"{layer}.attention.output.LayerNorm")
            inner = F.gelu(self._linear(x, f"{layer}.intermediate.dense"))
            x = self._norm(self._linear(inner, f"{layer}.output.dense") + x, f"{layer}.output.LayerNorm")
        weights = mask[..., None].to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=1).numpy()

    def _batches(self, texts: list[str], batch_size: int) -> Iterator[tuple[list[int], Any, Any]]:
        """Longest texts first (as sentence-transformers does: less padding), as (positions, ids, mask)."""
        import numpy as np

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            positions = order[start : start + batch_size]
            encodings = self.tokenizer.encode_batch([texts[i].strip() for i in positions])
            length = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(positions), length), dtype=np.int64)
            mask = np.zeros((len(positions), length), dtype=np.int64)
            for row, enc in enumerate(encodings):
                ids[row, : len(enc.ids)] = enc.ids
                mask[row, : len(enc.ids)] = 1
            yield positions, ids, mask

    def encode(
        self, texts: list[str], *, batch_size: int = 64, progress: bool = False, backend: str | None = None
    ) -> list[list[float]]:
        """One unit vector per text, in order. ``backend``: "numpy" or "torch"; default: numpy for a batch while
        torch is not imported and this encoder's numpy tokens stay within :data:`NUMPY_TOKEN_BUDGET`, else torch."""
        import sys

        out: list[list[float]] = [[] for _ in texts]
        batches: Iterable[tuple[list[int], Any, Any]] = self._batches(texts, batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, total=-(-len(texts) // batch_size), desc="embedding", unit="batch")
        for positions, ids, mask in batches:
            use = backend
            if use is None:
                small = self.numpy_tokens + ids.size <= NUMPY_TOKEN_BUDGET
                use = "numpy" if small and "torch" not in sys.modules else "torch"
            if use == "numpy":
                self.numpy_tokens += ids.size
                vectors = self._forward_numpy(ids, mask)
            else:
                import torch

                with torch.inference_mode():
                    vectors = self._forward(ids, mask)
            for position, vector in zip(positions, vectors.tolist(), strict=True):
                out[position] = vector
        return out


def _gpu_present() -> bool:
    """A GPU torch could use, checked without importing torch: a torch build with GPU support (not a ``+cpu``
    wheel, the one the project pins) and a GPU driver's device files (NVIDIA, AMD, WSL)."""
    import os
    from importlib import metadata

    try:
        if "+cpu" in metadata.version("torch"):
            return False
    except metadata.PackageNotFoundError:
        return False
    return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/proc/driver/nvidia", "/dev/kfd", "/dev/dxg"))


def load_bert_encoder(path: Path) -> BertEncoder | None:
    """The encoder for a plain mean-pooled BERT sentence-transformers directory on a CPU-only machine, else
    ``None`` (the caller runs sentence-transformers: other layouts, and a GPU it would use). Torch is imported
    to ask only where a GPU driver is present."""
    config = _plain_bert(path)
    if config is None:
        return None
    if _gpu_present():
        import torch

        if torch.cuda.is_available():
            return None
    return BertEncoder(path, config)
