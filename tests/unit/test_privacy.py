"""The redaction boundary: values spread across a conversation, metadata and ids, the leak gate with the
redactor's own detector, quarantine (whole, sealed) and the share that fails a run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from llmops.config import RedactParams, Settings
from llmops.data.quarantine import hold, original, read_quarantine, write_quarantine
from llmops.errors import ConfigError, PIILeakError
from llmops.pii.boundary import redact_batch
from llmops.pii.redact import Redactor
from llmops.pii.scan import Scanner
from llmops.pii.scope import key_hint, rebuild_metadata, spread_values
from llmops.pii.spans import Span
from llmops.pii.vault import Vault, hashed_id, id_hash_key
from llmops.records import Conversation, Document, Turn
from tests.factories import feedback_event

CARD = "4111 1111 1111 1111"


def _conv(cid: str, *texts: str, metadata: dict[str, Any] | None = None) -> Conversation:
    turns = [Turn(role="customer" if i % 2 == 0 else "agent", text=t) for i, t in enumerate(texts)]
    return Conversation(
        conversation_id=cid, channel="chat", created_at=datetime(2026, 1, 1, tzinfo=UTC), turns=turns, metadata=metadata or {}
    )


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(RedactParams(), id_key=b"k" * 32)


@pytest.mark.parametrize(
    ("texts", "spans", "expected"),
    [
        # a full name found in turn 1 -> full name, first name and surname, any case, in every turn
        (
            ["I'm Maria Gonzalez", "Thanks maria gonzalez", "OK MARIA, and Gonzalez?"],
            [[Span("PERSON", 4, 18, 0.7)], [], []],
            [["Maria Gonzalez"], ["maria gonzalez"], ["MARIA", "Gonzalez"]],
        ),
        # any detected value repeats; a word inside another word does not match
        (
            ["mail zorblat99@example.com", "sent to ZORBLAT99@EXAMPLE.COM; zorblat99@example.community"],
            [[Span("EMAIL_ADDRESS", 5, 26, 0.95)], []],
            [["zorblat99@example.com"], ["ZORBLAT99@EXAMPLE.COM"]],
        ),
        # stop words and short values never spread
        (["Hi Al, the order", "al the"], [[Span("PERSON", 3, 5, 0.7), Span("PERSON", 7, 10, 0.7)], []], [["Al", "the"], []]),
    ],
)
def test_spread_values_across_a_scope(texts: list[str], spans: list[list[Span]], expected: list[list[str]]) -> None:
    out = spread_values(texts, spans, RedactParams().entities)
    assert [sorted({t[s.start : s.end] for s in found}, key=t.find) for t, found in zip(texts, out, strict=True)] == expected


def test_a_name_is_redacted_in_every_turn(redactor: Redactor) -> None:
    conv = _conv("c1", "Hello, my name is Maria Gonzalez, card " + CARD, "Thanks maria gonzalez, Maria, all done.")
    (out,) = redactor.redact_conversations([conv])
    text = " ".join(t.text for t in out.turns).casefold()
    assert "maria" not in text and "gonzalez" not in text and "4111" not in text
    assert out.turns[1].text.startswith("Thanks <PERSON_1>")


@pytest.mark.parametrize(
    ("key", "hint"),
    [("customer_email", "EMAIL_ADDRESS"), ("phone", "PHONE_NUMBER"), ("customer_name", "PERSON"), ("product_name", None),
     ("billing_address", "STREET_ADDRESS"), ("intent", None), ("dob", "DATE_OF_BIRTH")],
)  # fmt: skip
def test_metadata_key_hints(key: str, hint: str | None) -> None:
    assert key_hint(key) == hint


def test_metadata_values_redacted_or_dropped(redactor: Redactor) -> None:
    meta = {
        "source": "crm",
        "intent": "refund",
        "customer_email": "zorblat99@gmail.com",
        "customer_name": "Quimby Zorblat",
        "product": "card for Quimby Zorblat",
        "category": ["ORDER", 4155550199],
    }
    conv = _conv("c2", "hi, it's zorblat again about my refund", "Sure Quimby.", metadata=meta)
    (out,) = redactor.redact_conversations([conv])
    dumped = out.model_dump_json().casefold()
    assert "zorblat" not in dumped and "quimby" not in dumped and "gmail" not in dumped
    assert set(out.metadata) == {"source", "intent", "product", "category"}  # allow-listed keys only
    assert out.metadata["source"] == "crm" and out.metadata["category"][0] == "ORDER"
    assert redactor.metadata_dropped >= 2


def test_rebuild_metadata_keeps_numbers_that_hold_no_pii() -> None:
    meta = {"intent": "x", "n": 3, "deep": {"a": [1, "b"]}, "secret": "s"}
    slots = [("intent", (), "x"), ("n", (), 3), ("deep", ("a", 0), 1), ("deep", ("a", 1), "b"), ("secret", (), "s")]
    out, dropped = rebuild_metadata(meta, slots, ["x", "3", "1", "<PERSON_1>", "s"], ["intent", "n", "deep"])
    assert out == {"intent": "x", "n": 3, "deep": {"a": [1, "<PERSON_1>"]}} and dropped == 1
    assert meta["deep"] == {"a": [1, "b"]}  # input untouched


@pytest.mark.parametrize(
    ("cid", "hashed"),
    [("maria.gonzalez@example.com", True), ("bitext-00042", False), ("call-4111111111111111", True), ("twitter-118843", False)],
)
def test_pii_like_ids_get_a_keyed_hash(redactor: Redactor, cid: str, hashed: bool) -> None:
    (out,) = redactor.redact_conversations([_conv(cid, "hello there")])
    assert (out.conversation_id != cid) is hashed
    if hashed:
        assert out.conversation_id == hashed_id(cid, redactor.id_key)
        assert out.conversation_id.startswith("anon-") and out.conversation_id[5:].isalpha()


def test_hashed_ids_depend_on_the_key_and_are_stable(tmp_path: Path) -> None:
    assert hashed_id("a@b.io", b"1") == hashed_id("a@b.io", b"1") != hashed_id("a@b.io", b"2")
    settings = Settings(home=tmp_path)
    key = id_hash_key(settings)
    assert len(key) == 64 and id_hash_key(settings) == key  # created once, then reused
    assert (tmp_path / "pii-vault/id-hash.key").stat().st_mode & 0o777 == 0o600
    assert id_hash_key(Settings(home=tmp_path, pii_hash_key="explicit")) == b"explicit"


def test_feedback_ids_and_texts(redactor: Redactor) -> None:
    ev = feedback_event("jane.doe@example.com", "card " + CARD, "ok jane.doe@example.com")
    (out,) = redactor.redact_feedback([ev])
    assert out.generation_id.startswith("anon-") and "4111" not in out.query and "jane" not in out.answer


def test_scanner_uses_the_redactors_detector_and_threshold(redactor: Redactor) -> None:
    scanner = Scanner(redactor.cfg, redactor)
    assert scanner.redactor is redactor  # one detection path
    default = Scanner(RedactParams(score_threshold=0.55))
    assert default.redactor.analyzer.cfg.score_threshold == 0.55  # and the redactor's threshold, not a second one
    redacted = redactor.redact_texts([f"card {CARD}, mail a.b@example.org, call +1 415 555 0100, order 77881234"])
    assert scanner.scan([("x", t) for t in redacted]) == []
    assert [f.entity_type for f in scanner.scan([("x", f"card {CARD}")])] == ["CREDIT_CARD"]


class _Blind:
    """Fault injection: a redactor whose detection misses every card, so residuals reach the gate."""

    def __init__(self, real: Redactor) -> None:
        self.real = real

    def analyze(self, texts: list[str], entities: list[str] | None = None) -> list[list[Span]]:
        return self.real.analyze(texts, [e for e in (entities or self.real.cfg.entities) if e != "CREDIT_CARD"])


def _half_blind_redactor(cfg: RedactParams) -> Redactor:
    red = Redactor(cfg, id_key=b"k")
    blind = _Blind(Redactor(cfg, analyzer=red.analyzer))
    red.detect = lambda texts, entities=None: blind.analyze(texts, entities)  # type: ignore[method-assign]
    return red


@pytest.mark.parametrize(("leaky", "max_share", "fails"), [(1, 0.2, False), (3, 0.2, True), (0, 0.0, False)])
def test_residuals_are_quarantined_and_fail_only_above_the_share(leaky: int, max_share: float, fails: bool) -> None:
    red = _half_blind_redactor(RedactParams(max_leak_share=max_share))
    convs = [_conv(f"c{i}", f"my card is {CARD}" if i < leaky else "where is my parcel?") for i in range(10)]
    docs = [Document(doc_id="d", text="Call us any time.")]
    result = redact_batch(convs, [feedback_event("g", "hi", "hello")], docs, red)
    assert len(result.conversations.quarantined) == leaky and len(result.conversations.records) == 10 - leaky
    assert result.conversations.counts()["in"] == 10 and result.leak_share == pytest.approx(leaky / 12)
    assert all(CARD not in c.model_dump_json() for c in result.conversations.records)
    report = result.report()
    assert report["passed"] is not fails
    assert report["conversations"]["residual_types"] == ({"CREDIT_CARD": leaky} if leaky else {})
    json.dumps(report)
    if leaky:
        q = result.conversations.quarantined[0]
        assert "CREDIT_CARD at $.turns[0].text" in q.reason and CARD in q.raw  # the whole pre-redaction record
        assert CARD not in json.dumps(report)
    if fails:
        with pytest.raises(PIILeakError, match=r"redact\.max_leak_share"):
            result.check()
    else:
        result.check()


def test_the_real_redactor_leaves_no_residual_on_its_own_output(redactor: Redactor) -> None:
    convs = [
        _conv("c1", f"card {CARD}, phone +1 (415) 555-0100, order #A1234567", "Your order A1234567 ships to <PHONE_NUMBER_1>."),
        _conv("c2", "SSN 536-22-8714, IBAN GB82 WEST 1234 5698 7654 32", "Thanks, noted."),
    ]
    result = redact_batch(convs, [], [], redactor)
    assert result.leak_share == 0 and len(result.conversations.records) == 2


@pytest.mark.parametrize("key", [None, Vault.generate_key()])
def test_quarantine_is_whole_and_sealed_with_the_vault_key(tmp_path: Path, key: str | None) -> None:
    raw = b'{"text": "card ' + CARD.encode() + b'", "pad": "' + b"x" * 100_000 + b'"'
    records = [hold("s", 1, "malformed JSON", raw), hold("s", 2, "not UTF-8", b"caf\xe9 " + CARD.encode())]
    path = tmp_path / "q.jsonl"
    assert write_quarantine(path, records, key) == 2
    on_disk = path.read_text()
    assert (CARD in on_disk) is (key is None) and "malformed JSON" in on_disk  # reasons stay readable
    assert path.stat().st_mode & 0o777 == 0o600
    back = read_quarantine(path, key)
    assert [original(r) for r in back] == [raw, b"caf\xe9 " + CARD.encode()]
    if key is not None:
        with pytest.raises(ConfigError, match="LLMOPS_PII_VAULT_KEY"):
            read_quarantine(path, Vault.generate_key())
        with pytest.raises(ConfigError, match="sealed"):
            original(read_quarantine(path)[0])


def test_cli_lists_and_reveals_a_sealed_quarantine(tmp_path: Path, settings_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from llmops.cli import app

    key = Vault.generate_key()
    path = tmp_path / "q.jsonl"
    write_quarantine(path, [hold("in.jsonl", 7, "malformed JSON", f'{{"text": "card {CARD}"')], key)
    listed = CliRunner().invoke(app, ["pii", "quarantine", str(path)])
    assert listed.exit_code == 0 and "in.jsonl:7: malformed JSON [sealed]" in listed.output and CARD not in listed.output
    assert CliRunner().invoke(app, ["pii", "quarantine", str(path), "--reveal"]).exit_code != 0  # no key: refused
    monkeypatch.setenv("LLMOPS_PII_VAULT_KEY", key)
    revealed = CliRunner().invoke(app, ["pii", "quarantine", str(path), "--reveal"])
    assert revealed.exit_code == 0 and CARD in revealed.output
