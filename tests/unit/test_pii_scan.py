"""Leak scan: planted canaries in every sink of the nightly run are caught; redacted output passes;
the trainset stage refuses to publish a leaking training set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli import app
from llmops.config import RedactParams
from llmops.errors import PIILeakError
from llmops.pii.scan import Scanner, assert_clean, chroma_texts, scan_path, scan_records

CARD = "4111 1111 1111 1111"  # valid Luhn
EMAIL = "canary.leak@example.com"
IBAN = "GB82WEST12345698765432"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("data/trainset/train.jsonl", json.dumps({"messages": [{"role": "user", "content": f"my card is {CARD}"}]})),
        ("data/redacted/feedback.jsonl", json.dumps({"generation_id": "g", "query": "hi", "correction": f"mail {EMAIL}"})),
        ("reports/evaluate/samples.jsonl", json.dumps({"answer": f"pay to {IBAN}"})),
        ("reports/drift/report.html", f"<html><td>{EMAIL}</td></html>"),
        ("reports/run.json", json.dumps({"summary": {"notes": ["ssn 123-45-6789"]}})),
        ("logs/nightly.log", "INFO 12:00 retry for customer at +44 20 7946 0958"),
    ],
)
def test_canary_in_each_file_sink_is_caught(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True)
    path.write_text("clean line, order of 3 items on 2024-03-15\n" + content + "\n")
    findings = scan_path(tmp_path, RedactParams())
    assert len(findings) == 1 and findings[0].location.startswith(str(path))
    with pytest.raises(PIILeakError, match="1 piece") as err:
        assert_clean(findings, name)
    for secret in (CARD, EMAIL, IBAN, "123-45-6789", "7946 0958"):
        assert secret not in str(err.value)  # the error message must not become the leak


def test_canary_in_chroma_documents_is_caught(tmp_path: Path) -> None:
    import chromadb

    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    col = client.create_collection("knowledge-base")
    col.add(
        ids=["a", "b"], documents=["How to reset a password", f"Refunds go to card {CARD}"], embeddings=[[0.1, 0.2], [0.2, 0.1]]
    )
    findings = Scanner(RedactParams()).scan(chroma_texts(col))
    assert [(f.location, f.entity_type) for f in findings] == [("knowledge-base/b:document", "CREDIT_CARD")]


def test_placeholders_and_ordinary_text_pass() -> None:
    docs = [{"text": "Mail <EMAIL_ADDRESS_1> about order of 12 boxes on 12/05/2023, card <CREDIT_CARD_1>, v2.4.1"}]
    scan_records(docs, RedactParams(), "docs")  # no raise


def test_cli_scan_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "ok.jsonl").write_text('{"text": "hello <PERSON_1>"}\n')
    (tmp_path / "bad.jsonl").write_text(json.dumps({"text": f"reach {EMAIL}"}) + "\n")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01" + EMAIL.encode())  # binary files are skipped
    runner = CliRunner()
    ok = runner.invoke(app, ["pii", "scan", str(tmp_path / "ok.jsonl"), "--params", str(tmp_path / "none")])
    assert ok.exit_code == 0 and "clean" in ok.output
    bad = runner.invoke(app, ["pii", "scan", str(tmp_path), "--params", str(tmp_path / "none")])
    assert bad.exit_code == 1 and "EMAIL_ADDRESS" in bad.output and EMAIL not in bad.output
    missing = runner.invoke(app, ["pii", "scan", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    both = runner.invoke(app, ["pii", "scan", str(tmp_path / "ok.jsonl"), str(tmp_path / "bad.jsonl"), "--params", "none"])
    assert both.exit_code == 1 and "EMAIL_ADDRESS" in both.output  # several paths: a leak in any fails
    two_ok = runner.invoke(app, ["pii", "scan", str(tmp_path / "ok.jsonl"), str(tmp_path / "ok.jsonl"), "--params", "none"])
    assert two_ok.exit_code == 0 and "clean" in two_ok.output


def test_cli_redact_conversations_and_text_lines(tmp_path: Path) -> None:
    conv = {"conversation_id": "c1", "channel": "chat", "created_at": "2026-01-01T00:00:00Z",
            "turns": [{"role": "customer", "text": f"I am Anna, mail {EMAIL}"},
                      {"role": "agent", "text": f"Sent to {EMAIL}"}]}  # fmt: skip
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(conv) + "\n" + json.dumps({"text": f"card {CARD}", "id": 7}) + "\n")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["pii", "redact", "--in", str(src), "--out", str(out), "--params", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines[0]["turns"][1]["text"] == "Sent to <EMAIL_ADDRESS_1>" and EMAIL not in lines[0]["turns"][0]["text"]
    assert lines[1] == {"text": "card <CREDIT_CARD_1>", "id": 7}
    src.write_text(json.dumps({"text": "ok"}) + "\n{broken\n")
    bad = CliRunner().invoke(app, ["pii", "redact", "--in", str(src), "--out", str(tmp_path / "o2.jsonl")])
    assert bad.exit_code == 1 and ":2 is not JSON" in bad.output and not (tmp_path / "o2.jsonl").exists()


def test_trainset_stage_refuses_to_publish_a_leak(workspace: Path) -> None:
    from pipelines import clean, index, ingest, redact, trainset

    sample = workspace / "data/sample/conversations.jsonl"
    # In-domain dialogues (the training set keeps answers the knowledge base supports), a card in each question.
    convs = [json.loads(x) for x in sample.read_text().splitlines()[:-2] if '"doc2dial"' in x]
    for conv in convs:
        conv["turns"][0]["text"] += f" My card is {CARD}."
    for stage in (ingest, clean, redact, index):  # training examples carry the context the serving index returns
        stage.main()
    for part in (workspace / "data/redacted/conversations").glob("*.jsonl"):
        part.unlink()
    (workspace / "data/redacted/conversations/2026-01-01.jsonl").write_text("\n".join(json.dumps(c) for c in convs) + "\n")
    (workspace / "data/feedback").mkdir(parents=True)
    (workspace / "data/feedback/curated.jsonl").write_text("")
    (workspace / "data/feedback/dpo.jsonl").write_text("")
    # Examples that carry the card are far more than redact.max_leak_share of the set, so nothing is
    # published; they are held back locally with their reasons.
    with pytest.raises(PIILeakError, match=r"of the training records .* still hold personal data .*CREDIT_CARD"):
        trainset.main()
    assert not (workspace / "data/trainset/train.jsonl").exists()
    assert any((workspace / "data/trainset-quarantine").iterdir())
