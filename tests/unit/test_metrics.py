from __future__ import annotations

import math

import pytest

from llmops.evaluation.answers import answer_metrics, token_f1
from llmops.evaluation.retrieval import retrieval_metrics


def test_retrieval_metrics_hand_checked() -> None:
    ranked = [["a", "a", "b", "c"], ["x", "y", "g"], ["p", "q"]]
    gold = [["a"], ["g"], ["zz"]]
    m = retrieval_metrics(ranked, gold, ks=(1, 2, 5))
    # q1 hit at rank 1, q2 at rank 3 (x, y, g), q3 never
    assert m["recall@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["recall@2"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["recall@5"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["mrr"] == pytest.approx((1 + 1 / 3) / 3, abs=1e-4)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(4)) / 3, abs=1e-4)


def test_duplicate_chunks_of_a_doc_collapse() -> None:
    m = retrieval_metrics([["a", "a", "a", "b"]], [["b"]], ks=(2,))
    assert m["recall@2"] == 1.0


@pytest.mark.parametrize(
    ("pred", "ref", "f1"),
    [
        ("The cat sat", "the cat sat", 1.0),
        ("cat", "the cat sat", 2 * 1 * 0.5 / 1.5),
        ("dog", "cat", 0.0),
        ("", "", 1.0),
        ("", "cat", 0.0),
    ],
)
def test_token_f1(pred: str, ref: str, f1: float) -> None:
    assert token_f1(pred, ref) == pytest.approx(f1)


def test_answer_metrics_refusals_and_empty() -> None:
    m = answer_metrics(["I'm sorry, I don't know.", "", "renew online"], ["x", "y", "renew it online"])
    assert m["refusal_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert m["empty_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert m["answers"] == 3
