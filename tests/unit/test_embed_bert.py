"""The BERT encoder (torch, or numpy for a process's first few texts) gives sentence-transformers' vectors,
and other layouts still run on sentence-transformers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llmops.index.bert import BertEncoder, load_bert_encoder
from llmops.index.embed import LocalEmbedder, packaged_minilm_path

TEXTS = [
    "Where is my parcel? It was due on Monday.",
    "",
    "   leading and trailing spaces   ",
    "Ünïcödé, emoji 📦 and CJK 包裹在哪里",
    "refund " * 400,  # past the model's 256 tokens: truncated the same way
    "How do I reset my password?",
    "a",
    "My card was charged twice for the same order, can you reverse one of the payments please?",
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(packaged_minilm_path()), device="cpu")
    return model.encode(TEXTS, batch_size=3, normalize_embeddings=True, convert_to_numpy=True)


def test_packaged_model_runs_on_the_bert_encoder_with_sentence_transformers_vectors(reference: np.ndarray) -> None:
    embedder = LocalEmbedder()
    assert isinstance(embedder._bert, BertEncoder)
    assert embedder.embedder_id == "all-MiniLM-L6-v2:384"
    for batch_size in (1, 3, 64):  # padding and batching change nothing beyond float rounding
        got = np.array(LocalEmbedder(batch_size=batch_size).embed(TEXTS))
        assert got.shape == reference.shape
        assert np.abs(got - reference).max() < 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_both_backends_give_sentence_transformers_vectors(reference: np.ndarray, backend: str) -> None:
    encoder = load_bert_encoder(packaged_minilm_path())
    assert encoder is not None
    for batch_size in (1, 3, 64):
        got = np.array(encoder.encode(TEXTS, batch_size=batch_size, backend=backend))
        assert np.abs(got - reference).max() < 1e-5


def test_a_few_texts_need_no_torch_and_more_switch_to_it() -> None:
    """A fresh process embeds its first texts in numpy without importing torch (~1 CPU s); past the token
    budget it imports torch and stays on it; the vectors agree across the switch."""
    code = """
import sys
import numpy as np
from llmops.index.bert import NUMPY_TOKEN_BUDGET
from llmops.index.embed import LocalEmbedder
embedder = LocalEmbedder()
few = np.array(embedder.embed(["Where is my parcel?", "How do I reset my password?"]))
assert "torch" not in sys.modules, "a few texts imported torch"
many = np.array(embedder.embed(["Where is my parcel? " * 20] * 40 + ["Where is my parcel?"]))
assert "torch" in sys.modules and embedder._bert.numpy_tokens <= NUMPY_TOKEN_BUDGET
assert np.abs(many[-1] - few[0]).max() < 1e-5
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_copied_model_directory_is_run_the_same_way(tmp_path: Path, reference: np.ndarray) -> None:
    copy = shutil.copytree(packaged_minilm_path(), tmp_path / "tuned")  # as the fine-tuned embedder is saved
    embedder = LocalEmbedder(str(copy))
    assert embedder._bert is not None and embedder.embedder_id == "tuned:384"
    assert np.abs(np.array(embedder.embed(TEXTS)) - reference).max() < 1e-5


def test_an_embedder_saved_by_sentence_transformers_is_run_the_same_way(tmp_path: Path) -> None:
    """What the fine-tune stage saves (the current sentence-transformers layout, its max_seq_length only in
    the tokenizer's config): the same vectors, truncated at the saved length, not the packaged 256."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(packaged_minilm_path()), device="cpu")
    model.max_seq_length = 128
    model.save(str(tmp_path / "saved"))
    saved = SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    assert saved.max_seq_length == 128
    expected = saved.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    embedder = LocalEmbedder(str(tmp_path / "saved"))
    assert embedder._bert is not None and embedder.embedder_id == "saved:384"
    assert np.abs(np.array(embedder.embed(TEXTS)) - expected).max() < 1e-5


@pytest.mark.parametrize(
    ("file", "change"),
    [
        ("1_Pooling/config.json", {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}),
        ("config.json", {"model_type": "roberta"}),
        ("sentence_bert_config.json", {"do_lower_case": True}),
    ],
)
def test_other_layouts_run_on_sentence_transformers(tmp_path: Path, file: str, change: dict) -> None:
    copy = shutil.copytree(packaged_minilm_path(), tmp_path / "other")
    config = json.loads((copy / file).read_text())
    (copy / file).write_text(json.dumps({**config, **change}))
    assert load_bert_encoder(copy) is None
    if file == "1_Pooling/config.json":  # still a loadable model: sentence-transformers runs it
        from sentence_transformers import SentenceTransformer

        embedder = LocalEmbedder(str(copy))
        assert embedder._bert is None
        expected = SentenceTransformer(str(copy), device="cpu").encode(TEXTS[:2], normalize_embeddings=True)
        assert np.abs(np.array(embedder.embed(TEXTS[:2])) - expected).max() < 1e-6


def test_missing_files_fall_back(tmp_path: Path) -> None:
    copy = shutil.copytree(packaged_minilm_path(), tmp_path / "partial")
    (copy / "tokenizer.json").unlink()
    assert load_bert_encoder(copy) is None
    assert load_bert_encoder(tmp_path / "nowhere") is None


def test_half_precision_weights_run_on_sentence_transformers(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    copy = shutil.copytree(packaged_minilm_path(), tmp_path / "half")
    weights = load_file(str(copy / "model.safetensors"))
    save_file(
        {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in weights.items()}, str(copy / "model.safetensors")
    )
    assert load_bert_encoder(copy) is None
