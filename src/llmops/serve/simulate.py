"""Traffic simulator: real questions to the running service, answers rated against gold answers.

Rating rule (simple and visible): token F1 >= ``good`` -> +1; <= ``bad`` -> -1 with the gold answer as
the correction (a human fixing a bad answer); in between -> 0. Every request carries
``X-LLMOPS-Simulated: 1``, so the generation log marks these events ``simulated``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

from llmops.evaluation.answers import token_f1
from llmops.records import EvalQuestion

HEADERS = {"X-LLMOPS-Simulated": "1"}


def rate(answer: str, gold: str, *, good: float = 0.3, bad: float = 0.1) -> tuple[int, str | None]:
    f1 = token_f1(answer, gold)
    if f1 >= good:
        return 1, None
    if f1 <= bad:
        return -1, gold
    return 0, None


def simulate(
    questions: Sequence[EvalQuestion],
    base_url: str,
    n: int,
    *,
    seed: int = 0,
    client: Any = None,
    timeout: float = 120.0,
    api_key: str | None = None,
) -> dict[str, Any]:
    """Send ``n`` questions (sampled with replacement), post a rating for each answer; returns counts.
    ``api_key``: the secret sent as ``Authorization: Bearer`` (corrections only train as a reviewer's)."""
    import httpx

    usable = [q for q in questions if q.answer]
    if not usable:
        raise ValueError("no question has a gold answer to rate against")
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    own = client is None
    headers = {**HEADERS, **({"Authorization": f"Bearer {api_key}"} if api_key else {})}
    client = client or httpx.Client(base_url=base_url, timeout=timeout, headers=headers)
    try:
        for _ in range(n):
            q = rng.choice(usable)
            resp = client.post("/answer", json={"query": q.query}, headers=headers)
            resp.raise_for_status()
            body = resp.json()
            rating, correction = rate(body["answer"], q.answer or "")
            fb = client.post(
                "/feedback",
                json={"generation_id": body["generation_id"], "rating": rating, "correction": correction},
                headers=headers,
            )
            fb.raise_for_status()
            counts["answers"] += 1
            counts[{1: "rated_up", 0: "rated_neutral", -1: "rated_down"}[rating]] += 1
            counts["corrections"] += int(correction is not None)
    finally:
        if own:
            client.close()
    return dict(counts)
