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

# The module layout of a plain mean-pooled sentence-transformers model (normalising is ours to do anyway).
_MODULES = ("sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling")
_NORMALIZE = "sentence_transformers.models.Normalize"


def _plain_bert(path: Path) -> dict[str, Any] | None:
    """The BERT config of a sentence-transformers directory this module can run, else ``None``."""
    try:
        modules = [m["type"] for m in json.loads((path / "modules.json").read_text(encoding="utf-8"))]
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        pooling = json.loads((path / "1_Pooling/config.json").read_text(encoding="utf-8"))
        st_config = json.loads((path / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
        v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"
    )
    plain = (
        tuple(modules[:2]) == _MODULES
        and all(m == _NORMALIZE for m in modules[2:])
        and config.get("model_type") == "bert"
        and config.get("hidden_act") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and mean_only
        and not st_config.get("do_lower_case")
        and (path / "tokenizer.json").is_file()
        and (path / "model.safetensors").is_file()
    )
    return {**config, "max_seq_length": st_config.get("max_seq_length") or 512} if plain else None


class BertEncoder:
    """Mean-pooled, L2-normalised sentence vectors of a BERT model on the CPU (inference only)."""

    def __init__(self, path: Path, config: dict[str, Any]) -> None:
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        self._torch = torch
        self.weights = {k.removeprefix("bert."): v for k, v in load_file(str(path / "model.safetensors")).items()}
        self.hidden, self.heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        self.layers, self.eps = int(config["num_hidden_layers"]), float(config["layer_norm_eps"])
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        max_len = min(int(config["max_seq_length"]), int(config["max_position_embeddings"]))
        self.tokenizer.enable_truncation(max_length=max_len)
        self.tokenizer.no_padding()

    @property
    def dimension(self) -> int:
        return self.hidden

    def _linear(self, x: Any, name: str) -> Any:
        return self._torch.nn.functional.linear(x, self.weights[f"{name}.weight"], self.weights[f"{name}.bias"])

    def _norm(self, x: Any, name: str) -> Any:
        w = self.weights
        return self._torch.nn.functional.layer_norm(x, (self.hidden,), w[f"{name}.weight"], w[f"{name}.bias"], self.eps)

    def _forward(self, ids: Any, mask: Any) -> Any:
        torch, F, w = self._torch, self._torch.nn.functional, self.weights
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
        torch = self._torch
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
        with self._torch.inference_mode():
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
