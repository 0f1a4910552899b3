"""Contracts on the PII gold sets in data/pii-gold: readable by the evaluator, spans inside their texts and on
word boundaries, fixed tune/test splits that do not overlap, and the tweet set rebuilt byte for byte from
../shared/data by its build script."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from llmops.pii.evaluate import load_gold

GOLD = Path(__file__).resolve().parents[2] / "data/pii-gold"
SETS = ["wnut17-dev-tune", "wnut17-dev-test", "twitter-cc-tune", "twitter-cc-test"]


@pytest.mark.parametrize("name", SETS)
def test_gold_set_is_well_formed(name: str) -> None:
    samples = load_gold(GOLD / f"{name}.jsonl")
    assert len(samples) > 300
    for s in samples:
        for span in s.spans:
            assert 0 <= span.start < span.end <= len(s.text)
            value = s.text[span.start : span.end]
            assert value == value.strip() and value, (name, value)
            assert span.start == 0 or not (s.text[span.start - 1].isalnum() and value[0].isalnum()), (name, value)


@pytest.mark.parametrize("prefix", ["wnut17-dev", "twitter-cc"])
def test_tune_and_test_parts_do_not_overlap(prefix: str) -> None:
    tune = {x.text for x in load_gold(GOLD / f"{prefix}-tune.jsonl")}
    test = {x.text for x in load_gold(GOLD / f"{prefix}-test.jsonl")}
    shared = tune & test
    # a few posts are repeated verbatim in the source (re-posted tweets, one-word comments), nothing more
    assert len(shared) <= 0.02 * len(test), sorted(shared)[:5]


def test_wnut_split_is_the_line_parity_of_the_source(shared_data: Path) -> None:
    source = [x for x in (shared_data / "wnut17-dev-entities/wnut17_dev_pii_gold.jsonl").read_text().splitlines() if x.strip()]
    assert (GOLD / "wnut17-dev-tune.jsonl").read_text().splitlines() == source[0::2]
    assert (GOLD / "wnut17-dev-test.jsonl").read_text().splitlines() == source[1::2]


def test_twitter_set_is_rebuilt_exactly_from_its_annotations(shared_data: Path, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("build_twitter_gold", GOLD / "build_twitter_gold.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    counts = module.build(shared_data, tmp_path)
    assert counts == {"tune": 346, "test": 340}
    for part in ("tune", "test"):
        assert (tmp_path / f"twitter-cc-{part}.jsonl").read_bytes() == (GOLD / f"twitter-cc-{part}.jsonl").read_bytes()
    people = [json.loads(x) for x in (GOLD / "twitter-cc-test.jsonl").read_text().splitlines()]
    assert sum(s["entity_type"] == "PERSON" for p in people for s in p["spans"]) == 29
