"""The redact stage as DVC runs it: residual records quarantined (sealed with the vault key), the leak
gate in metrics/redact.json, and a failure only above redact.max_leak_share."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from llmops import workspace as ws
from llmops.config import RedactParams
from llmops.data.quarantine import read_quarantine
from llmops.errors import PIILeakError
from llmops.jsonl import write_jsonl
from llmops.pii.redact import Redactor
from llmops.pii.spans import Span
from llmops.pii.vault import Vault
from llmops.records import Conversation, Document, Turn
from tests.factories import feedback_event

CARD = "4111 1111 1111 1111"


def _write_clean(n: int, leaky: int) -> None:
    convs = [
        Conversation(
            conversation_id=f"c{i}",
            channel="chat",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
            turns=[Turn(role="customer", text=f"my card is {CARD}" if i < leaky else "where is my parcel?")],
        )
        for i in range(n)
    ]
    write_jsonl(ws.CLEAN_CONVERSATIONS / "2026-01-01.jsonl", convs)
    write_jsonl(ws.CLEAN / "feedback.jsonl", [feedback_event("g1", "hi", "hello")])
    write_jsonl(ws.CLEAN / "documents.jsonl", [Document(doc_id="d", text="Opening hours: 9 to 5.")])


def _blind_to_cards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: the redactor misses cards (the gate, with the real detector, does not)."""
    real = Redactor.from_settings

    def from_settings(cfg: RedactParams, settings: object) -> Redactor:
        red = real(cfg, settings)
        analyze = red.analyze

        def blind(texts: list[str], entities: list[str] | None = None) -> list[list[Span]]:
            return analyze(texts, [e for e in (entities or cfg.entities) if e != "CREDIT_CARD"])

        red.detect = blind  # type: ignore[method-assign]
        return red

    monkeypatch.setattr(Redactor, "from_settings", from_settings)


@pytest.mark.parametrize(("leaky", "fails"), [(1, False), (3, True)])
def test_redact_stage_quarantines_residuals_and_fails_above_the_share(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, leaky: int, fails: bool
) -> None:
    from pipelines import redact

    key = Vault.generate_key()
    monkeypatch.setenv("LLMOPS_PII_VAULT_KEY", key)
    from llmops.config import apply_overrides

    apply_overrides(workspace / "params.yaml", {"redact.max_leak_share": "0.1"})
    _write_clean(20, leaky)
    _blind_to_cards(monkeypatch)
    if fails:
        with pytest.raises(PIILeakError, match="data/redact-quarantine"):
            redact.main()
    else:
        redact.main()
    gate = json.loads((workspace / "metrics/redact.json").read_text())["leak_gate"]
    assert gate["conversations"] == {
        "in": 20,
        "out": 20 - leaky,
        "quarantined": leaky,
        "residual_types": {"CREDIT_CARD": leaky} if leaky else {},
    }
    assert gate["passed"] is not fails and gate["max_leak_share"] == 0.1
    held = workspace / ws.REDACT_QUARANTINE_CONVERSATIONS / "2026-01-01.jsonl"
    assert CARD not in held.read_text() and CARD not in (workspace / ws.REDACTED_CONVERSATIONS / "2026-01-01.jsonl").read_text()
    records = read_quarantine(held, key)
    assert len(records) == leaky and all(CARD in r.raw and "CREDIT_CARD" in r.reason for r in records)
