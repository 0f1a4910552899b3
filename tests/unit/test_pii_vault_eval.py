"""Vault round trip (concurrent writers, wrong key) and the gold evaluation (scoring, formats, CLI)."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli import app
from llmops.config import RedactParams, Settings
from llmops.errors import ConfigError, DataContractError
from llmops.pii.evaluate import GoldSample, doc_counts, load_gold, paired_bootstrap, score
from llmops.pii.redact import Redactor
from llmops.pii.spans import Span
from llmops.pii.vault import Vault, open_vault
from tests.factories import feedback_event


def _write(args: tuple[str, str, int]) -> None:
    path, key, n = args
    Vault(path, key).put_many((f"s{n}", f"<PERSON_{i}>", f"name {n}-{i}" * 50) for i in range(40))


def test_vault_round_trip_through_the_redactor(tmp_path: Path) -> None:
    key = Vault.generate_key()
    vault = Vault(tmp_path / "vault.jsonl", key)
    red = Redactor(RedactParams(vault=True, entities=["EMAIL_ADDRESS", "CREDIT_CARD"]), vault=vault)
    ev = feedback_event("g1", "card 4111 1111 1111 1111, mail a@b.io", "ok a@b.io")
    out = red.redact_feedback([ev])[0]
    assert out.query == "card <CREDIT_CARD_1>, mail <EMAIL_ADDRESS_1>"
    assert "4111" not in (tmp_path / "vault.jsonl").read_text()  # encrypted at rest
    assert vault.reveal(out.query, "feedback:g1") == ev.query
    with pytest.raises(ConfigError, match="LLMOPS_PII_VAULT_KEY"):
        Vault(tmp_path / "vault.jsonl", Vault.generate_key()).mapping("feedback:g1")


def test_vault_is_safe_under_concurrent_writers(tmp_path: Path) -> None:
    key, path = Vault.generate_key(), str(tmp_path / "v.jsonl")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_write, [(path, key, n) for n in range(8)])
    lines = Path(path).read_text().splitlines()
    assert len(lines) == 8 * 40 and all(json.loads(x)["token"] for x in lines)
    assert Vault(path, key).mapping("s3")["<PERSON_7>"] == "name 3-7" * 50


def test_vault_is_off_by_default_and_needs_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMOPS_PII_VAULT_KEY", raising=False)
    assert open_vault(RedactParams(), Settings()) is None
    with pytest.raises(ConfigError, match="LLMOPS_PII_VAULT_KEY"):
        open_vault(RedactParams(vault=True), Settings())
    with pytest.raises(ConfigError, match="Fernet"):
        Vault(tmp_path / "v", "not-a-key")
    with pytest.raises(ConfigError, match="LLMOPS_PII_VAULT_KEY"):  # every sink builds its redactor this way
        Redactor.from_settings(RedactParams(vault=True), Settings())
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LLMOPS_PII_VAULT_KEY", Vault.generate_key())
    assert Redactor.from_settings(RedactParams(vault=True), Settings()).vault is not None
    assert Redactor.from_settings(RedactParams(), Settings()).vault is None


def test_score_is_entity_agnostic_overlap_and_ignores_non_personal_types() -> None:
    gold = [
        GoldSample("x" * 40, (Span("PERSON", 0, 5, 1), Span("CREDIT_CARD", 10, 20, 1), Span("TITLE", 30, 35, 1))),
        GoldSample("y" * 40, ()),
    ]
    predicted = [
        [Span("LOCATION", 2, 4, 1), Span("PERSON", 31, 33, 1), Span("EMAIL_ADDRESS", 22, 28, 1)],
        [Span("PERSON", 0, 3, 1)],
    ]
    m = score(gold, predicted)
    # recall 1/2 (card missed); precision 1/3 (title overlap is dropped, two false positives)
    assert (m["recall"], m["precision"]) == (0.5, round(1 / 3, 4))
    assert m["f2"] == round(5 * (1 / 3) * 0.5 / (4 / 3 + 0.5), 4)
    assert m["per_entity"]["CREDIT_CARD"] == {"recall": 0.0, "found": 0, "gold": 1}
    assert "TITLE" in m["ignored_types"]
    # the same judgement per document: (found, gold, correct, false positives)
    assert doc_counts(gold, predicted) == [(1, 2, 1, 1), (0, 0, 0, 1)]


def test_paired_bootstrap_gives_the_difference_and_an_interval_that_holds_it() -> None:
    worse = [(1, 2, 1, 1)] * 30 + [(2, 2, 2, 0)] * 30
    better = [(2, 2, 2, 0)] * 60
    same = paired_bootstrap(worse, worse)
    assert all(d == {"delta": 0.0, "low": 0.0, "high": 0.0} for d in same.values())
    diff = paired_bootstrap(better, worse, samples=500)
    assert diff["recall"]["delta"] == 0.25 and 0 < diff["recall"]["low"] <= 0.25 <= diff["recall"]["high"]
    assert paired_bootstrap(worse, better, samples=500)["f2"]["high"] < 0
    with pytest.raises(ValueError):
        paired_bootstrap(worse, better[:10])


def test_load_gold_formats_and_errors(tmp_path: Path) -> None:
    item = {"full_text": "Hi Ann", "spans": [{"entity_type": "PERSON", "start_position": 3, "end_position": 6}]}
    (tmp_path / "g.json").write_text(json.dumps([item]))
    (tmp_path / "g.jsonl").write_text(json.dumps(item) + "\n\n" + json.dumps(item) + "\n")
    assert load_gold(tmp_path / "g.json")[0].spans[0] == Span("PERSON", 3, 6, 1.0)
    assert len(load_gold(tmp_path / "g.jsonl")) == 2
    (tmp_path / "bad.jsonl").write_text('{"text": "no spans"}\n')
    with pytest.raises(DataContractError, match="presidio-research format"):
        load_gold(tmp_path / "bad.jsonl")


def test_cli_eval_on_the_presidio_gold_subset(shared_data: Path, tmp_path: Path) -> None:
    gold = shared_data / "presidio-synth-pii" / "synth_dataset_v2.json"
    result = CliRunner().invoke(app, ["pii", "eval", "--gold", str(gold), "--limit", "150", "--params", str(tmp_path / "none")])
    assert result.exit_code == 0, result.output
    m = json.loads(result.output)
    assert {"recall", "precision", "f2", "docs_per_s", "per_entity", "ignored_types"} <= m.keys()
    assert m["structured_recall"] >= 0.95 and m["f2"] >= 0.75


@pytest.mark.slow
def test_full_gold_meets_the_structured_bar(shared_data: Path) -> None:
    from llmops.cli.pii import make_detector
    from llmops.pii.evaluate import evaluate

    m = evaluate(load_gold(shared_data / "presidio-synth-pii" / "synth_dataset_v2.json"), make_detector(RedactParams(), "fast"))
    assert m["structured_recall"] >= 0.99
