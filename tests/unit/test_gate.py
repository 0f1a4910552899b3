"""The promotion gate: evidence thresholds, ties ("no change"), BCa interval, guarded metrics, score_field checks."""

from __future__ import annotations

import random

import pytest

from llmops.config import GateParams
from llmops.errors import ConfigError
from llmops.evaluation.answers import token_f1
from llmops.evaluation.gate import check_score_field, decide, mean_scores, scores_from_samples
from llmops.evaluation.paired import bca_interval, detectable_effect, paired_test
from llmops.reports.evaluation import sample_rows

CHAMP = {"answers": {"token_f1": 0.30}, "retrieval": {"recall@5": 0.80}}
SMALL = GateParams(min_paired_examples=3)


def _metrics(f1: float, recall: float = 0.80) -> dict:
    return {"answers": {"token_f1": f1}, "retrieval": {"recall@5": recall}}


def test_k_repeats_are_averaged_per_question() -> None:
    assert mean_scores({"q1": [0.2, 0.4, 0.6], "q2": 1.0}) == pytest.approx({"q1": 0.4, "q2": 1.0})


def test_noise_cannot_promote() -> None:
    """Same underlying quality, judged with noise: the point estimate is higher, the CI still covers 0."""
    rng = random.Random(7)
    truth = {f"q{i}": rng.random() for i in range(120)}
    champ = {q: [min(1, max(0, v + rng.gauss(0, 0.15))) for _ in range(3)] for q, v in truth.items()}
    chall = {q: [min(1, max(0, v + rng.gauss(0, 0.15))) for _ in range(3)] for q, v in truth.items()}
    decision = decide(_metrics(0.5), _metrics(0.4), challenger_scores=chall, champion_scores=champ)
    assert not decision.promote
    assert "not a reliable improvement" in decision.reasons[0]
    ev = decision.evidence
    assert ev["paired_questions"] == 120 and ev["decision"] == "reject" and ev["ci_method"] == "BCa bootstrap"
    low, high = ev["ci"]
    assert low <= 0 <= high and 0 < ev["mde"] < 0.1 and ev["p_value"] > 0.025
    assert "minimum detectable effect" in decision.reasons[0]


def test_clear_improvement_is_promoted_with_reasons() -> None:
    rng = random.Random(3)
    champ = {f"q{i}": [rng.uniform(0.1, 0.4)] for i in range(30)}
    chall = {q: [v[0] + 0.3 + rng.uniform(-0.05, 0.05)] for q, v in champ.items()}
    cfg = GateParams(margin=0.1, min_paired_examples=30)
    d = decide(_metrics(0.55), _metrics(0.25), cfg, challenger_scores=chall, champion_scores=champ)
    assert d.promote, d.reasons
    assert "lower bound > margin 0.1" in d.reasons[0] and d.evidence["ci"][0] > 0.1
    assert d.evidence["decision"] == "promote" and d.evidence["p_value"] < 0.01
    assert any("recall@5 held" in r for r in d.reasons)


@pytest.mark.parametrize(
    ("champion", "challenger", "decision", "reason"),
    [
        ({"a": 0.2, "b": 0.5, "c": 0.9}, {"a": 0.2, "b": 0.5, "c": 0.9}, "no change", "no change: challenger and champion"),
        ({"a": 0.2, "b": 0.5, "c": 0.9}, {"a": 0.2, "b": 0.5, "c": 0.4}, "reject", "not a reliable improvement"),
    ],
)
def test_ties_are_no_change_not_a_zero_width_interval(champion: dict, challenger: dict, decision: str, reason: str) -> None:
    d = decide(_metrics(0.5), _metrics(0.5), SMALL, challenger_scores=challenger, champion_scores=champion)
    assert not d.promote and d.evidence["decision"] == decision and reason in d.reasons[0]
    assert d.evidence["ties"] == sum(challenger[q] == champion[q] for q in champion)


def test_a_few_wins_among_many_ties_are_not_enough() -> None:
    """Identical answers on most questions, a handful of better ones: skewed, mostly-zero differences."""
    champ = {f"q{i}": 0.3 for i in range(100)}
    chall = dict(champ) | {f"q{i}": 0.9 for i in range(2)}
    d = decide(_metrics(0.31), _metrics(0.30), challenger_scores=chall, champion_scores=champ)
    assert not d.promote and d.evidence["ties"] == 98
    # Three wins among 97 ties: the BCa lower bound alone is above 0, but 3 signs are no evidence (p = 1/8).
    chall = dict(champ) | {f"q{i}": 0.9 for i in range(3)}
    d = decide(_metrics(0.32), _metrics(0.30), challenger_scores=chall, champion_scores=champ)
    assert d.evidence["ci"][0] > 0 and d.evidence["p_value"] > 0.025
    assert not d.promote and "permutation p >= 0.025" in d.reasons[0]


def test_too_few_paired_questions_never_promote() -> None:
    d = decide(_metrics(0.9), CHAMP, challenger_scores={"a": [0.9]}, champion_scores={"a": [0.3]})
    assert not d.promote and "not enough evidence: 1 paired questions" in d.reasons[0]
    assert not decide(_metrics(0.9), CHAMP).promote  # no per-question scores at all: no evidence either


def test_guarded_metrics_and_missing_primary() -> None:
    scores = {f"q{i}": [0.9] for i in range(5)}, {f"q{i}": [0.2] for i in range(5)}
    assert decide(_metrics(0.30), None).promote  # no champion at all
    d = decide(_metrics(0.40, recall=0.70), CHAMP, SMALL, challenger_scores=scores[0], champion_scores=scores[1])
    assert not d.promote and any("recall@5 regressed: 0.7000 < champion 0.8000" in r for r in d.reasons)
    assert d.evidence["decision"] == "reject"
    assert not decide({"retrieval": {"recall@5": 0.9}}, CHAMP).promote  # no primary metric -> never promoted


def test_bca_interval_is_deterministic_brackets_the_mean_and_follows_skew() -> None:
    diffs = [float(i % 3) / 2 - 0.4 for i in range(20)]
    first = bca_interval(diffs, samples=1000, confidence=0.9, seed=1)
    assert first == bca_interval(diffs, samples=1000, confidence=0.9, seed=1)
    mean = sum(diffs) / 20  # by hand: seven 0s, seven 0.5s, six 1.0s -> 0.475 - 0.4
    assert mean == pytest.approx(0.075) and first[0] < mean < first[1]
    skewed = [0.0] * 90 + [0.8] * 10  # a long right tail: the interval reaches further right than left
    low, high = bca_interval(skewed, samples=4000, confidence=0.95, seed=0)
    assert high - 0.08 > 0.08 - low > 0


def test_detectable_effect_shrinks_with_more_questions() -> None:
    # (z_0.975 + z_0.8) * 0.10 / sqrt(n): 0.114 at the old 6 answered questions, 0.026 at 120
    assert detectable_effect(0.10, 6, confidence=0.95) == pytest.approx(0.1144, abs=1e-3)
    assert detectable_effect(0.10, 120, confidence=0.95) == pytest.approx(0.0256, abs=1e-3)
    assert paired_test([0.0, 0.0]).no_change and paired_test([0.0, 0.1]).ties == 1


def test_score_field_must_match_what_evaluate_writes() -> None:
    row = {"id": "q1", "answer": "a", "reference": "a b", "answers.token_f1": 0.67, "answers.semantic_similarity": 0.9}
    rows = sample_rows([row])
    assert scores_from_samples(rows, "answers.token_f1") == {"q1": [0.67]}
    with pytest.raises(ConfigError, match=r"'token_f1' is not a per-question column.*semantic_similarity, answers.token_f1"):
        scores_from_samples(rows, "token_f1")  # the old default: no longer recomputed silently
    check_score_field(sample_rows([{"id": "q2", "answer": None}]), "anything")  # nothing answered: nothing to check


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
    for rows in (good, shuffled):
        for row in rows:
            row["answers.token_f1"] = token_f1(row["answer"], row["reference"])
    champ_scores = scores_from_samples(sample_rows(good), "answers.token_f1")
    chall_scores = scores_from_samples(sample_rows(shuffled), "answers.token_f1")
    mean = lambda s: sum(v[0] for v in s.values()) / len(s)  # noqa: E731
    d = decide(
        _metrics(mean(chall_scores)),
        _metrics(mean(champ_scores)),
        SMALL,
        challenger_scores=chall_scores,
        champion_scores=champ_scores,
    )
    assert not d.promote and d.evidence["mean_diff"] < -0.3
