"""Promotion gate: may a challenger replace the champion?

This is the first, simple gate: the challenger must not be worse than the champion on the primary
metric (answer token F1) beyond ``margin``, and must not regress retrieval recall@5. Every decision
carries its reasons so the run artifact can show them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PRIMARY = ("answers", "token_f1")
GUARDED = [("retrieval", "recall@5")]


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)


def _get(metrics: dict[str, Any], path: tuple[str, str]) -> float | None:
    value = metrics.get(path[0], {}).get(path[1])
    return float(value) if value is not None else None


def decide(
    challenger: dict[str, Any], champion: dict[str, Any] | None, *, margin: float = 0.0, tolerance: float = 0.01
) -> GateDecision:
    """Compare evaluation metrics (``metrics.json`` shape) of challenger and champion."""
    if champion is None:
        return GateDecision(True, ["no champion yet: the first evaluated model becomes champion"])
    reasons, ok = [], True
    new, old = _get(challenger, PRIMARY), _get(champion, PRIMARY)
    if new is None:
        return GateDecision(False, ["challenger has no primary metric answers.token_f1"])
    if old is not None and new < old + margin:
        ok = False
        reasons.append(f"answers.token_f1 {new:.4f} < champion {old:.4f} + margin {margin}")
    else:
        reasons.append(f"answers.token_f1 {new:.4f} >= champion {old if old is not None else 'n/a'} + margin {margin}")
    for path in GUARDED:
        n, o = _get(challenger, path), _get(champion, path)
        if n is not None and o is not None and n < o - tolerance:
            ok = False
            reasons.append(f"{'.'.join(path)} regressed: {n:.4f} < {o:.4f} - {tolerance}")
    return GateDecision(ok, reasons)
