"""The promotion gate: margins, guarded metrics, k-repeat averaging and the paired bootstrap against noise."""

from __future__ import annotations

import random

import pytest

from llmops.config import GateParams
from llmops.evaluation.answers import token_f1
from llmops.evaluation.gate import bootstrap_diff, decide, mean_scores, scores_from_samples

CHAMP = {"answers": {"token_f1": 0.30}, "retrieval": {"recall@5": 0.80}}


def _metrics(f1: float, recall: float = 0.80) -> dict:
    return {"answers": {"token_f1": f1}, "retrieval": {"recall@5": recall}}


def test_k_repeats_are_averaged_per_question() -> None:
    assert mean_scores({"q1": [0.2, 0.4, 0.6], "q2": 1.0}) == pytest.approx({"q1": 0.4, "q2": 1.0})


def test_noise_cannot_promote() -> None:
    """Same underlying quality, judged with noise: the point estimate is higher, the CI still covers 0."""
    rng = random.Random(7)
    truth = {f"q{i}": rng.random() for i in range(40)}
    champ = {q: [min(1, max(0, v + rng.gauss(0, 0.15))) for _ in range(3)] for q, v in truth.items()}
    chall = {q: [min(1, max(0, v + rng.gauss(0, 0.15))) for _ in range(3)] for q, v in truth.items()}
    m_new, m_old = mean_scores(chall), mean_scores(champ)
    new_f1, old_f1 = sum(m_new.values()) / 40, sum(m_old.values()) / 40
    lucky = max(new_f1, old_f1) + 0.001  # the challenger's headline number looks better
    decision = decide(_metrics(lucky), _metrics(old_f1), challenger_scores=chall, champion_scores=champ)
    assert not decision.promote
    assert "not a reliable improvement" in decision.reasons[0]
    assert decision.evidence["paired_questions"] == 40
    low, high = decision.evidence["ci"]
    assert low <= 0 <= high


def test_clear_improvement_is_promoted_with_reasons() -> None:
    rng = random.Random(3)
    champ = {f"q{i}": [rng.uniform(0.1, 0.4)] for i in range(30)}
    chall = {q: [v[0] + 0.3 + rng.uniform(-0.05, 0.05)] for q, v in champ.items()}
    d = decide(_metrics(0.55), _metrics(0.25), GateParams(margin=0.1), challenger_scores=chall, champion_scores=champ)
    assert d.promote, d.reasons
    assert "lower bound > margin 0.1" in d.reasons[0] and d.evidence["ci"][0] > 0.1
    assert any("recall@5 held" in r for r in d.reasons)


def test_margin_and_guarded_metrics_without_scores() -> None:
    assert decide(_metrics(0.30), None).promote
    assert decide(_metrics(0.31), CHAMP).promote
    assert not decide(_metrics(0.31), CHAMP, GateParams(margin=0.05)).promote
    worse = decide(_metrics(0.20), CHAMP)
    assert not worse.promote and "0.2000 <= champion 0.3000" in worse.reasons[0]
    d = decide(_metrics(0.40, recall=0.70), CHAMP)
    assert not d.promote and any("recall@5 regressed: 0.7000 < champion 0.8000" in r for r in d.reasons)
    assert not decide({"retrieval": {"recall@5": 0.9}}, CHAMP).promote  # no primary metric -> never promoted


def test_too_few_paired_questions_fall_back_to_point_estimate() -> None:
    d = decide(_metrics(0.9), CHAMP, challenger_scores={"a": [0.9]}, champion_scores={"a": [0.3]})
    assert d.promote and "only 1 paired questions" in d.reasons[0]


def test_bootstrap_is_deterministic_and_brackets_the_mean() -> None:
    a = {str(i): float(i % 3) / 2 for i in range(20)}
    b = {str(i): 0.4 for i in range(20)}
    first = bootstrap_diff(a, b, samples=500, confidence=0.9, seed=1)
    assert first == bootstrap_diff(a, b, samples=500, confidence=0.9, seed=1)
    mean, low, high, n = first
    # by hand: i % 3 over 0..19 gives seven 0s, seven 1s (0.5) and six 2s (1.0): (7*0.5 + 6*1.0)/20 - 0.4
    assert n == 20 and mean == pytest.approx(0.075) and low < mean < high


def test_planted_regression_shuffled_answers_is_rejected() -> None:
    """A challenger that answers with another question's answer (shuffled) loses on per-question F1."""
    refs = {
        f"q{i}": text
        for i, text in enumerate(
            [
                "You can reset your password from the sign-in page using the forgot password link.",
                "Refunds are issued to the original payment method within five business days.",
                "To change your delivery address open the order and choose edit shipping details.",
                "Cancel a subscription in account settings under billing and plans.",
                "Invoices are available for download from the orders page as PDF files.",
                "Our support team answers chat messages every day from 8 am to 8 pm.",
            ]
        )
    }
    good = [{"id": q, "answer": r.replace("You can ", "").replace("Our ", ""), "reference": r} for q, r in refs.items()]
    ids = list(refs)
    shuffled = [{"id": q, "answer": refs[ids[(k + 1) % len(ids)]], "reference": refs[q]} for k, q in enumerate(ids)]
    champ_scores, chall_scores = scores_from_samples(good, "token_f1"), scores_from_samples(shuffled, "token_f1")
    assert chall_scores["q0"] == [token_f1(refs["q1"], refs["q0"])]
    mean = lambda s: sum(v[0] for v in s.values()) / len(s)  # noqa: E731
    d = decide(
        _metrics(mean(chall_scores)),
        _metrics(mean(champ_scores)),
        challenger_scores=chall_scores,
        champion_scores=champ_scores,
    )
    assert not d.promote and d.evidence["mean_diff"] < -0.3
