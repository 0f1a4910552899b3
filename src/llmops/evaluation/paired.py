"""Paired statistics for the promotion gate: BCa bootstrap CI, sign-flip permutation test, detectable effect.

Per-question score differences of two models are skewed (many exact ties where both answer alike, a long
tail where one answer hits the reference and the other does not), so the percentile bootstrap's interval
is off-centre; BCa (Efron 1987) corrects bias and skew. The sign-flip permutation test makes no
distributional assumption at all and gives the p-value reported beside the interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()


@dataclass(frozen=True)
class PairedTest:
    """The paired comparison of challenger - champion over ``n`` shared questions."""

    n: int
    mean: float
    low: float
    high: float
    ties: int  # questions with exactly equal scores (identical answers score identically)
    sd: float
    p_value: float  # one-sided: H0 mean difference <= margin
    mde: float  # smallest true gain the test detects with 80% power at this n and spread

    @property
    def no_change(self) -> bool:
        return self.n > 0 and self.ties == self.n


def bca_interval(diffs: Sequence[float], *, samples: int, confidence: float, seed: int = 0) -> tuple[float, float]:
    """Bias-corrected and accelerated bootstrap interval of the mean of ``diffs``."""
    import numpy as np

    d = np.asarray(diffs, dtype=np.float64)
    n, mean = len(d), float(d.mean())
    if n < 2 or np.all(d == d[0]):
        return mean, mean
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, n, size=(samples, n))].mean(axis=1)
    share = float((boots < mean).mean() + 0.5 * (boots == mean).mean())
    z0 = _NORMAL.inv_cdf(min(max(share, 1 / samples), 1 - 1 / samples))
    jack = (d.sum() - d) / (n - 1)
    dev = jack.mean() - jack
    den = 6 * float((dev**2).sum()) ** 1.5
    accel = float((dev**3).sum()) / den if den > 0 else 0.0
    alpha = (1 - confidence) / 2

    def quantile(z: float) -> float:
        shifted = z0 + (z0 + z) / (1 - accel * (z0 + z))
        return min(max(_NORMAL.cdf(shifted), 0.0), 1.0)

    low, high = np.quantile(boots, [quantile(_NORMAL.inv_cdf(alpha)), quantile(_NORMAL.inv_cdf(1 - alpha))])
    return float(low), float(high)


def sign_flip_p(diffs: Sequence[float], *, margin: float, samples: int, seed: int = 0) -> float:
    """One-sided paired permutation p-value of H0 "mean difference <= margin" (random sign flips)."""
    import numpy as np

    d = np.asarray(diffs, dtype=np.float64) - margin
    observed = float(d.mean())
    rng = np.random.default_rng(seed + 1)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(samples, len(d)))
    extreme = int(((signs * np.abs(d)).mean(axis=1) >= observed - 1e-12).sum())
    return (1 + extreme) / (samples + 1)


def detectable_effect(sd: float, n: int, *, confidence: float, power: float = 0.8) -> float:
    """Minimum detectable mean difference: (z_{1-alpha} + z_power) * sd / sqrt(n), alpha = one tail of the CI."""
    if n == 0:
        return float("inf")
    alpha = (1 - confidence) / 2
    return (_NORMAL.inv_cdf(1 - alpha) + _NORMAL.inv_cdf(power)) * sd / math.sqrt(n)


def paired_test(
    diffs: Sequence[float], *, margin: float = 0.0, samples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> PairedTest:
    """BCa interval, permutation p-value, ties and detectable effect for per-question differences."""
    n = len(diffs)
    if n == 0:
        return PairedTest(0, 0.0, 0.0, 0.0, 0, 0.0, 1.0, float("inf"))
    mean = sum(diffs) / n
    sd = (sum((x - mean) ** 2 for x in diffs) / (n - 1)) ** 0.5 if n > 1 else 0.0
    ties = sum(1 for x in diffs if x == 0)
    low, high = bca_interval(diffs, samples=samples, confidence=confidence, seed=seed)
    p = 1.0 if ties == n else sign_flip_p(diffs, margin=margin, samples=samples, seed=seed)
    return PairedTest(n, mean, low, high, ties, sd, p, detectable_effect(sd, n, confidence=confidence))
