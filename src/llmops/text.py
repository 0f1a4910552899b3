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
the same data always keeps the same examples. The signatures (``min (a * h + b) mod (2**61 - 1)`` over a
text's shingles, for every coefficient pair) are computed for many texts at once in numpy, exactly:
:func:`minhash_signatures` splits each product so that no step leaves 64 bits.
"""

from __future__ import annotations

import random
import re
import zlib
from collections import defaultdict
from collections.abc import Sequence
from itertools import chain
from typing import Any

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


def minhash_coefficients(count: int, seed: int) -> list[tuple[int, int]]:
    """``count`` seeded ``(a, b)`` pairs, ``1 <= a < p``, ``0 <= b < p`` (``p = 2**61 - 1``)."""
    rng = random.Random(seed)
    return [(rng.randrange(1, _PRIME), rng.randrange(0, _PRIME)) for _ in range(count)]


def _mod_prime(x: Any) -> Any:
    """``x mod (2**61 - 1)`` of uint64 values below ``2**64`` (``2**61`` is 1 modulo the prime), in [0, p)."""
    import numpy as np

    p = np.uint64(_PRIME)
    x = (x & p) + (x >> np.uint64(61))
    return np.where(x >= p, x - p, x)


def minhash_signatures(sets: Sequence[set[int]], coeffs: Sequence[tuple[int, int]], *, chunk: int = 8192) -> list[list[int]]:
    """Per shingle set (non-empty, crc32 values), ``[min((a * h + b) % p for h in set) for a, b in coeffs]``,
    exactly the pure-Python signature (Python ints), computed in numpy ``chunk`` shingles at a time (a text
    with more shingles than that spans chunks: its minimum is taken over them; memory stays ~``chunk * 64``
    bytes per coefficient whatever the texts).

    ``a * h`` needs up to 93 bits. With ``a = hi * 2**32 + lo``: ``lo * h`` fits 64 bits, and ``t = hi * h``
    (under 2**61) times ``2**32`` is ``(t >> 29) * 2**61 + (t & (2**29 - 1)) * 2**32``, i.e. ``(t >> 29) + ((t &
    (2**29 - 1)) << 32)`` modulo p. The three residues and ``b`` sum below ``2**63``; one more reduction ends it.
    """
    import numpy as np

    if not sets:
        return []
    if any(not s for s in sets):
        raise ValueError("a MinHash signature needs at least one shingle per text")
    u64 = np.uint64
    a = np.array([c[0] for c in coeffs], dtype=u64)
    b = np.array([c[1] for c in coeffs], dtype=u64)
    a_hi, a_lo = a >> u64(32), a & u64(0xFFFFFFFF)
    low29 = u64((1 << 29) - 1)
    sizes = np.fromiter((len(s) for s in sets), dtype=np.int64, count=len(sets))
    flat = np.fromiter(chain.from_iterable(sets), dtype=u64, count=int(sizes.sum()))
    owner = np.repeat(np.arange(len(sets)), sizes)  # the text each shingle belongs to
    signatures = np.full((len(sets), len(coeffs)), _PRIME, dtype=u64)  # above every residue
    for start in range(0, len(flat), chunk):
        h, own = flat[start : start + chunk, None], owner[start : start + chunk]
        t = h * a_hi  # < 2**61
        value = _mod_prime((t >> u64(29)) + ((t & low29) << u64(32)) + _mod_prime(h * a_lo) + b)
        first = np.flatnonzero(np.concatenate(([True], own[1:] != own[:-1])))  # each text's first row here
        texts = own[first]
        signatures[texts] = np.minimum(signatures[texts], np.minimum.reduceat(value, first, axis=0))
    return signatures.tolist()


def near_duplicates(texts: Sequence[str], threshold: float, *, bands: int = 16, rows: int = 4, seed: int = 0) -> set[int]:
    """Indexes of texts that nearly duplicate an earlier text (Jaccard >= ``threshold``); the first copy is kept."""
    coeffs = minhash_coefficients(bands * rows, seed)
    sets = [shingles(t) for t in texts]
    buckets: dict[tuple[int, tuple[int, ...]], list[int]] = defaultdict(list)
    dropped: set[int] = set()
    for i, (s, signature) in enumerate(zip(sets, minhash_signatures(sets, coeffs), strict=True)):
        candidates: set[int] = set()
        for band in range(bands):
            key = (band, tuple(signature[band * rows : (band + 1) * rows]))
            candidates.update(buckets[key])
            buckets[key].append(i)
        if any(j not in dropped and jaccard(s, sets[j]) >= threshold for j in candidates):
            dropped.add(i)
    return dropped
