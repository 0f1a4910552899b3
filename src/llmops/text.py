"""Text helpers shared across layers: refusal detection and near-duplicate detection.

Evaluation, feedback curation, monitoring and training-set building all need them, so they live below all four
(see the layer contracts in pyproject.toml) instead of one of them importing another sideways.

Refusals: an answer that declines ("I'm sorry", "I don't know", ...), counted the same way by the answer
metrics, the heuristics, the production quality monitor and the feedback curation.

Near duplicates (training examples, gate questions, feedback pairs): MinHash over word 3-shingles with LSH banding.

Support data is full of templated answers ("I'm sorry to hear about order {{Order Number}} ...") that
differ in a word or two; training on hundreds of copies teaches the template, not the task. Candidates
share an LSH bucket; a pair counts as a duplicate only if its exact Jaccard similarity reaches the
threshold, so the banding never removes a false positive. Deterministic (crc32, seeded coefficients):
the same data always keeps the same examples.
"""

from __future__ import annotations

import random
import re
import zlib
from collections import defaultdict
from collections.abc import Sequence

_REFUSAL = re.compile(r"\b(i don't know|i do not know|i'm sorry|i am sorry|cannot help|can't help)\b", re.I)


def is_refusal(text: str) -> bool:
    """Does the answer decline ("I'm sorry", "I don't know", ...)?"""
    return bool(_REFUSAL.search(text))


_PRIME = (1 << 61) - 1
_WORD = re.compile(r"\w+")


def shingles(text: str, n: int = 3) -> set[int]:
    words = _WORD.findall(text.casefold())
    if len(words) < n:
        return {zlib.crc32(" ".join(words).encode())}
    return {zlib.crc32(" ".join(words[i : i + n]).encode()) for i in range(len(words) - n + 1)}


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def near_duplicates(texts: Sequence[str], threshold: float, *, bands: int = 16, rows: int = 4, seed: int = 0) -> set[int]:
    """Indexes of texts that nearly duplicate an earlier text (Jaccard >= ``threshold``); the first copy is kept."""
    rng = random.Random(seed)
    coeffs = [(rng.randrange(1, _PRIME), rng.randrange(0, _PRIME)) for _ in range(bands * rows)]
    sets = [shingles(t) for t in texts]
    buckets: dict[tuple[int, tuple[int, ...]], list[int]] = defaultdict(list)
    dropped: set[int] = set()
    for i, s in enumerate(sets):
        signature = [min((a * h + b) % _PRIME for h in s) for a, b in coeffs]
        candidates: set[int] = set()
        for band in range(bands):
            key = (band, tuple(signature[band * rows : (band + 1) * rows]))
            candidates.update(buckets[key])
            buckets[key].append(i)
        if any(j not in dropped and jaccard(s, sets[j]) >= threshold for j in candidates):
            dropped.add(i)
    return dropped
