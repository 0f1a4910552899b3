"""The numpy MinHash signature equals the pure-Python definition exactly (every coefficient, every text)."""

from __future__ import annotations

import random

import pytest

from llmops.text import _PRIME, minhash_coefficients, minhash_signatures, near_duplicates, shingles


def _reference(sets: list[set[int]], coeffs: list[tuple[int, int]]) -> list[list[int]]:
    return [[min((a * h + b) % _PRIME for h in s) for a, b in coeffs] for s in sets]


def test_signatures_equal_the_python_definition_on_extreme_and_random_values() -> None:
    rng = random.Random(7)
    edge = [0, 1, 2, (1 << 29) - 1, 1 << 29, (1 << 31), (1 << 32) - 2, (1 << 32) - 1]
    coeffs = [
        *minhash_coefficients(64, seed=42),
        (1, 0),
        (_PRIME - 1, _PRIME - 1),
        ((1 << 32) - 1, 0),
        (1 << 32, _PRIME - 1),
        ((1 << 60) + 12345, 1 << 60),
        (_PRIME - 1, 0),
    ]
    sets = [*({h} for h in edge), set(edge)]
    sets += [{rng.randrange(0, 1 << 32) for _ in range(rng.randrange(1, 200))} for _ in range(300)]
    assert minhash_signatures(sets, coeffs) == _reference(sets, coeffs)
    # chunked: texts cut into groups of a few shingles (one text larger than a chunk stays whole)
    assert minhash_signatures(sets, coeffs, chunk=7) == _reference(sets, coeffs)
    assert all(0 <= v < _PRIME for sig in minhash_signatures(sets, coeffs) for v in sig)


def test_signatures_of_real_shingles_and_empty_input() -> None:
    texts = [
        "Where is my parcel? It was due on Monday.",
        "where is my PARCEL, it was due on monday",
        "ok",
        "",
        "Ünïcode wörds — and 123 numbers in a sentence that runs a little longer than the others",
    ]
    sets = [shingles(t) for t in texts]
    coeffs = minhash_coefficients(64, seed=3)
    assert minhash_signatures(sets, coeffs) == _reference(sets, coeffs)
    assert minhash_signatures([], coeffs) == []
    with pytest.raises(ValueError, match="at least one shingle"):
        minhash_signatures([set()], coeffs)


def test_near_duplicates_drop_a_reworded_copy_and_keep_the_rest() -> None:
    base = "please cancel the order i placed yesterday because the delivery date is far too late for me"
    texts = [base, base.replace("yesterday", "today"), "how do i reset my password on the mobile app", base]
    assert near_duplicates(texts, 0.6) == {1, 3}  # one word of 17 changed: Jaccard 2/3
    assert near_duplicates(texts, 0.7) == {3}


def test_signature_values_are_python_ints() -> None:
    sigs = minhash_signatures([{1, 2, 3}, {(1 << 32) - 1}], minhash_coefficients(8, seed=1))
    assert all(type(v) is int for sig in sigs for v in sig)


def test_band_keys_are_the_ones_earlier_runs_cached() -> None:
    """The cached band keys ("minhash-v1") stay valid: these are the keys of the pure-Python signature."""
    from llmops.finetune.trainset import MinHashBands

    keys = MinHashBands(0)(["Where is my parcel? It was due on Monday.", "ok"])
    assert keys[0][:4] == [-9042928112058558634, -4375202110068191127, -1013850524244230052, -1026698585371732532]
    assert keys[0][-1] == 519441981172457904
    assert keys[1][:2] == [2718963092411509609, -6077720362747314877] and keys[1][-1] == 7595492113541487576
