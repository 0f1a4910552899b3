"""Embedding fine-tune on the real model (tiny sizes): pairs, leak guard, training changes the model,
registration only when the tuned embedder wins."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmops.config import EmbedTuneParams
from llmops.errors import DataContractError
from llmops.finetune.embedder import current_embedder, gold_chunk, training_pairs, tune_embedder
from llmops.index.chunk import chunk_documents
from llmops.index.embed import LocalEmbedder
from llmops.records import Document, EvalQuestion
from tests.factories import feedback_event

DOCS = [
    Document(doc_id="plates", text="Plates are issued at the counter.\n\nForm MV-82 registers a new vehicle."),
    Document(doc_id="loans", text="Student loans are repaid monthly.\n\nDeferment pauses payments while in school."),
]
TRAIN = [
    EvalQuestion(id="d1_1", query="which form registers my car", gold_doc_ids=["plates"], answer="Form MV-82 registers"),
    EvalQuestion(id="d2_1", query="can I pause loan payments", gold_doc_ids=["loans"], answer="Deferment pauses payments"),
    EvalQuestion(id="d3_1", query="where do I get plates", gold_doc_ids=["plates"], answer="Plates are issued"),
    EvalQuestion(id="d4_1", query="how are loans repaid", gold_doc_ids=["loans"], answer="repaid monthly"),
]
HELD_OUT = [EvalQuestion(id="d9_1", query="registering a vehicle", gold_doc_ids=["plates"])]
CFG = EmbedTuneParams(batch_size=2, max_seq_len=32, learning_rate=1e-4)


def _chunks() -> list:
    return chunk_documents(DOCS, size=8, overlap=0)  # one chunk per paragraph


def test_pairs_pick_the_chunk_that_covers_the_answer() -> None:
    chunks = _chunks()
    assert gold_chunk([c for c in chunks if c.doc_id == "plates"], "Form MV-82 registers").text.startswith("Form MV-82")
    fb = feedback_event("g", "pause payments?", "Deferment pauses payments.", rating=1, docs=["loans"])
    negative = fb.model_copy(update={"rating": -1})
    pairs = training_pairs(TRAIN[:1], chunks, [fb, negative])
    assert pairs == [
        ("which form registers my car", "Form MV-82 registers a new vehicle."),
        ("pause payments?", "Deferment pauses payments while in school."),
    ]


def test_held_out_questions_are_never_trained_on(tmp_path: Path) -> None:
    with pytest.raises(DataContractError, match="also in the training set"):
        tune_embedder(_chunks(), TRAIN, TRAIN[:1], "all-MiniLM-L6-v2", tmp_path, CFG)


@pytest.mark.slow  # two real trainings + four model loads
def test_tune_trains_evaluates_and_registers_only_a_winner(tmp_path: Path) -> None:
    # min_gain -1: any tuned model "wins", so the registration path is exercised deterministically
    # (on 4 pairs a real gain is a coin flip); the strict run below exercises the rejection path.
    eager = CFG.model_copy(update={"min_gain": -1.0})
    result = tune_embedder(_chunks(), TRAIN, HELD_OUT, "all-MiniLM-L6-v2", tmp_path, eager)
    assert result.pairs == 4 and set(result.base_metrics) >= {"recall@5", "mrr"}
    base, tuned = LocalEmbedder(), LocalEmbedder(result.tuned_path)
    assert tuned.embedder_id.startswith("minilm-tuned-") and tuned.embedder_id.endswith(":384")
    probe = ["which form registers my car"]
    assert not np.allclose(base.embed(probe), tuned.embed(probe), atol=1e-4)  # training moved the weights
    rows = [json.loads(x) for x in (tmp_path / "embedders.jsonl").read_text().splitlines()]
    assert result.promoted and rows[-1]["promoted"] is True
    assert current_embedder(tmp_path) == result.tuned_path

    strict = CFG.model_copy(update={"min_gain": 1.0})  # nothing can win by more than 1.0
    loser = tune_embedder(_chunks(), TRAIN, HELD_OUT, "all-MiniLM-L6-v2", tmp_path / "strict", strict)
    assert not loser.promoted and current_embedder(tmp_path / "strict") is None
