"""The gate's false-promotion rate on no-better challengers drawn from realistic per-question score shapes
(ties, token-F1 skew, "worse mostly, much better rarely"), at the product's gate-set size."""

from __future__ import annotations

import pytest

from llmops.config import GateParams
from llmops.evaluation.gatesim import NULL_SCENARIOS, Scenario, _shifted, promotion_rate

CFG = GateParams(bootstrap_samples=1000, guarded={})


@pytest.mark.parametrize("scenario", NULL_SCENARIOS, ids=lambda s: s.name)
def test_no_better_model_is_promoted_at_most_5_percent(scenario: Scenario) -> None:
    rate = promotion_rate(scenario, CFG, n=120, trials=200, seed=11)
    print(f"false promotion, {scenario.name}: {rate:.3f}")
    assert scenario.true_gain <= 0 and rate <= 0.05


def test_a_realistic_gain_is_seen() -> None:
    """The other side of the coin: +0.03 with the measured spread (sd 0.10) is promoted most of the time at
    n = 120; at the old n = 6 the gate refuses to decide (too little evidence) instead of guessing."""
    gain = Scenario("+0.03", 0.03, lambda g, n: _shifted(g, n, gain=0.03))
    assert promotion_rate(gain, CFG, n=120, trials=100, seed=5) >= 0.7
    assert promotion_rate(gain, CFG, n=6, trials=20, seed=5) == 0.0  # min_paired_examples 100
