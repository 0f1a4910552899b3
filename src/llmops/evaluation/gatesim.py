"""How often would the gate promote a model that is no better? A simulation on realistic score shapes.

Per-question answer scores of two greedy models on the gate set are not normal: many questions tie
exactly (identical answers), token F1 piles up near 0, and a model can be slightly worse almost
everywhere yet much better on a few questions. Each scenario draws per-question champion/challenger
score pairs whose true mean difference is <= 0 and runs :func:`llmops.evaluation.gate.decide` on them;
the share promoted is the false-promotion rate (it must stay <= 1 - confidence).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from llmops.config import GateParams

Pairs = tuple[dict[str, float], dict[str, float]]  # (champion, challenger) per question


@dataclass(frozen=True)
class Scenario:
    name: str
    true_gain: float
    draw: Callable[[object, int], Pairs]  # (numpy Generator, n) -> scores


def _pairs(champ: Iterable[float], chall: Iterable[float]) -> Pairs:
    return {f"q{i}": float(x) for i, x in enumerate(champ)}, {f"q{i}": float(x) for i, x in enumerate(chall)}


def _exchangeable(rng: object, n: int, *, tie: float = 0.36, noise: float = 0.07) -> Pairs:
    """Both models are draws around the same per-question quality (token-F1-like Beta(0.9, 4)); a share tie."""
    import numpy as np

    g: np.random.Generator = rng  # type: ignore[assignment]
    quality = g.beta(0.9, 4.0, n)
    champ = np.clip(quality + g.normal(0, noise, n), 0, 1)
    chall = np.clip(quality + g.normal(0, noise, n), 0, 1)
    same = g.random(n) < tie
    chall[same] = champ[same]
    return _pairs(champ, chall)


def _skewed(rng: object, n: int, *, gain: float = 0.0) -> Pairs:
    """Half tie; of the rest, 90% slightly worse (-0.05) and 10% much better (+0.45): mean `gain`, right-skewed."""
    import numpy as np

    g: np.random.Generator = rng  # type: ignore[assignment]
    champ = g.beta(2.0, 2.0, n) * 0.5
    u = g.random(n)
    diff = np.where(u < 0.5, 0.0, np.where(u < 0.95, -0.05, 0.45)) + gain
    diff[u < 0.5] = 0.0
    return _pairs(champ, champ + diff)


def _shifted(rng: object, n: int, *, gain: float, sd: float = 0.10, tie: float = 0.33) -> Pairs:
    """A third of the questions tie; the rest differ by Normal(gain / (1 - tie), sd): true mean `gain`."""
    import numpy as np

    g: np.random.Generator = rng  # type: ignore[assignment]
    champ = g.beta(0.9, 4.0, n)
    diff = g.normal(gain / (1 - tie), sd, n)
    diff[g.random(n) < tie] = 0.0
    return _pairs(champ, champ + diff)


def _sparse(rng: object, n: int, *, changed: float = 0.05, size: float = 0.3) -> Pairs:
    """A challenger that changes only a few answers (~5%), each as likely better as worse by `size`."""
    import numpy as np

    g: np.random.Generator = rng  # type: ignore[assignment]
    champ = g.beta(0.9, 4.0, n) * 0.6
    diff = np.where(g.random(n) < changed, g.choice([-size, size], n), 0.0)
    return _pairs(champ, champ + diff)


NULL_SCENARIOS = [
    Scenario("exchangeable, 36% ties", 0.0, _exchangeable),
    Scenario("sparse: ~5% of answers change, symmetric", 0.0, _sparse),
    Scenario("skewed: slightly worse mostly, much better on 5%", 0.0, _skewed),
    Scenario("slightly worse (-0.01)", -0.01, lambda g, n: _shifted(g, n, gain=-0.01)),
]


def promotion_rate(scenario: Scenario, cfg: GateParams, *, n: int = 120, trials: int = 400, seed: int = 0) -> float:
    """Share of ``trials`` simulated gate runs on ``n`` paired questions that promote the challenger."""
    import numpy as np

    from llmops.evaluation.gate import decide

    rng = np.random.default_rng(seed)
    promoted = 0
    for t in range(trials):
        champ, chall = scenario.draw(rng, n)
        head = {"answers": {cfg.primary.partition(".")[2]: 0.0}}
        d = decide(head, head, cfg, challenger_scores=chall, champion_scores=champ, seed=t)
        promoted += d.promote
    return promoted / trials


def false_promotion_report(cfg: GateParams, *, n: int = 120, trials: int = 400, seed: int = 0) -> dict[str, float]:
    """False-promotion rate per no-better scenario, plus the power to see a +0.03 gain (sd 0.10) for contrast."""
    cfg = cfg.model_copy(update={"guarded": {}, "min_paired_examples": min(cfg.min_paired_examples, n)})
    out = {s.name: promotion_rate(s, cfg, n=n, trials=trials, seed=seed) for s in NULL_SCENARIOS}
    gain = Scenario("power at +0.03", 0.03, lambda g, k: _shifted(g, k, gain=0.03))
    out["power at +0.03 (sd 0.10)"] = promotion_rate(gain, cfg, n=n, trials=trials, seed=seed)
    return out
