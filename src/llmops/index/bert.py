"""A sentence-transformers BERT model with mean pooling (all-MiniLM-L6-v2, and the embedder the fine-tune
stage tunes from it), run on torch directly.

Why: importing sentence-transformers costs ~5 CPU s per process (it pulls transformers, torch's compiler
stack, scikit-learn and SciPy) against ~1 s for torch alone, and every nightly stage that embeds anything pays
it again: on a night with 1% new data that was more than half of the monitor's and the training set's work
(README "Incremental runs"). The encoder below is the same computation with the same weights and the same
torch kernels (linear, layer norm, exact GELU, scaled dot-product attention), tokenised by the model's own
``tokenizer.json``: ``tests/unit/test_embed_bert.py`` keeps its vectors equal to sentence-transformers' within
float rounding. Any other model layout (another architecture, another pooling, a dense head) returns ``None``
from :func:`load_bert_encoder` and is run by sentence-transformers itself.
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
        )
        if not plain:
            return None
        return {**config, "max_seq_length": _max_length(st_config, read_json(path / "tokenizer_config.json"), config)}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


class BertEncoder:
    """Mean-pooled, L2-normalised sentence vectors of a BERT model on the CPU (inference only)."""

    def __init__(self, path: Path, config: dict[str, Any]) -> None:
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        self.weights = {k.removeprefix("bert."): v for k, v in load_file(str(path / "model.safetensors")).items()}
        self.hidden, self.heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        self.layers, self.eps = int(config["num_hidden_layers"]), float(config["layer_norm_eps"])
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=int(config["max_seq_length"]))
        self.tokenizer.no_padding()

    @property
    def dimension(self) -> int:
        return self.hidden

    def _linear(self, x: Any, name: str) -> Any:
        import torch

        return torch.nn.functional.linear(x, self.weights[f"{name}.weight"], self.weights[f"{name}.bias"])

    def _norm(self, x: Any, name: str) -> Any:
        import torch

        w = self.weights
        return torch.nn.functional.layer_norm(x, (self.hidden,), w[f"{name}.weight"], w[f"{name}.bias"], self.eps)

    def _forward(self, ids: Any, mask: Any) -> Any:
        import torch

        F, w = torch.nn.functional, self.weights
        batch, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
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
        return F.normalize(pooled, p=2, dim=1)

    def _batches(self, texts: list[str], batch_size: int) -> Iterator[tuple[list[int], Any, Any]]:
        """Longest texts first (as sentence-transformers does: less padding), as (positions, ids, mask)."""
        import torch

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            positions = order[start : start + batch_size]
            encodings = self.tokenizer.encode_batch([texts[i].strip() for i in positions])
            length = max(len(e.ids) for e in encodings)
            ids = torch.zeros(len(positions), length, dtype=torch.long)
            mask = torch.zeros(len(positions), length, dtype=torch.long)
            for row, enc in enumerate(encodings):
                ids[row, : len(enc.ids)] = torch.tensor(enc.ids)
                mask[row, : len(enc.ids)] = 1
            yield positions, ids, mask

    def encode(self, texts: list[str], *, batch_size: int = 64, progress: bool = False) -> list[list[float]]:
        """One unit vector per text, in order."""
        out: list[list[float]] = [[] for _ in texts]
        batches: Iterable[tuple[list[int], Any, Any]] = self._batches(texts, batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, total=-(-len(texts) // batch_size), desc="embedding", unit="batch")
        import torch

        with torch.inference_mode():
            for positions, ids, mask in batches:
                for position, vector in zip(positions, self._forward(ids, mask).tolist(), strict=True):
                    out[position] = vector
        return out


def load_bert_encoder(path: Path) -> BertEncoder | None:
    """The encoder for a plain mean-pooled BERT sentence-transformers directory on a CPU-only machine, else
    ``None`` (the caller runs sentence-transformers: other layouts, and a GPU it would use)."""
    config = _plain_bert(path)
    if config is None:
        return None
    import torch

    if torch.cuda.is_available():
        return None
    return BertEncoder(path, config)
