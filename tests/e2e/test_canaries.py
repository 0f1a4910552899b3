"""Adversarial canaries: fictitious personal data of every kind we promise to remove is planted in the raw
sample (conversations, feedback, a malformed line), the nightly runs, and every sink is searched for it:
the DVC remote, the Chroma store, the registry, history and run summaries (all of ``LLMOPS_HOME``), and
the workspace's post-boundary outputs. A value counts as found in raw bytes, with invisible characters
and JSON escapes removed and case-folded, or (numbers) as a digit run.

The values are invented (names, streets, e-mail users); numbers are test numbers with valid checksums,
so the detectors cannot ignore them as noise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

WJ, SHY, RLO, PDF = "\u2060", "\u00ad", "\u202e", "\u202c"


@dataclass(frozen=True)
class Canary:
    category: str
    needles: tuple[str, ...] = ()  # searched case-folded, invisible characters removed
    digits: tuple[str, ...] = ()  # searched in each line's digit run
    chars: tuple[str, ...] = ()  # characters that must not survive into any text sink
    where: str = "sinks"  # "quarantine": only ever in the local quarantine
    turns: tuple[tuple[str, str], ...] = ()
    metadata: dict[str, object] = field(default_factory=dict)
    conversation_id: str | None = None


CANARIES = [
    Canary(
        "name reused by the agent",
        needles=("marisol", "quintanar"),
        turns=(
            ("customer", "Hello, my name is Marisol Quintanar and my parcel never arrived."),
            ("agent", "Thanks marisol quintanar, I have escalated it. Marisol, expect an update today."),
        ),
    ),
    Canary(
        "lower-case name in informal chat",
        needles=("travis holloway", "holloway"),
        turns=(("customer", "hey its travis holloway again, still no refund for my order"), ("agent", "Sorry about that!")),
    ),
    Canary(
        "card split by word joiners (U+2060)",
        digits=("4539148803436467",),
        turns=(("customer", f"My card 4539{WJ}1488{WJ}0343{WJ}6467 was charged twice."), ("agent", "Let me check.")),
    ),
    Canary(
        "phone split by soft hyphens (U+00AD)",
        digits=("5125550187",),
        turns=(("customer", f"call me back at 512{SHY}555{SHY}0187 please"), ("agent", "Will do.")),
    ),
    Canary(
        "lower-case street address",
        needles=("quimbly",),
        turns=(("customer", "please ship it to 1423 quimbly road apt 5b austin tx 78701"), ("agent", "Noted.")),
    ),
    Canary(
        "obfuscated e-mail",
        needles=("zorblat99",),
        turns=(("customer", "you can reach me at zorblat99 at gmail dot com"), ("agent", "Thanks, we will write to you.")),
    ),
    Canary(
        "SSN",
        needles=("536-22-8714", "22-8714"),
        digits=("536228714",),
        turns=(("customer", "Is my identity confirmed?"), ("agent", "We verified SSN 536-22-8714 for the account.")),
    ),
    Canary(
        "right-to-left override (U+202E)",
        chars=(RLO,),
        turns=(("customer", f"refund {RLO}gnp.exe{PDF} attached, please"), ("agent", "We received it.")),
    ),
    Canary(
        "IBAN",
        needles=("de89 3704", "de89370400440532013000"),
        digits=("89370400440532013000",),
        turns=(("customer", "transfer the refund to DE89 3704 0044 0532 0130 00 please"), ("agent", "Done.")),
    ),
    Canary(
        "date of birth",
        needles=("14/03/1987",),
        turns=(("customer", "my date of birth is 14/03/1987, can you update it?"), ("agent", "Updated.")),
    ),
    Canary(
        "personal data in metadata",
        needles=("vexmora",),
        digits=("7375550163",),
        metadata={"customer_email": "vexmora.tull@example.net", "customer_phone": "+1 737 555 0163", "intent": "refund"},
        turns=(("customer", "where is my refund?"), ("agent", "It was issued yesterday.")),
    ),
    Canary(
        "e-mail as conversation id",
        needles=("quenby.farsh", "quenby"),
        conversation_id="quenby.farsh@example.org",
        turns=(("customer", "I want to cancel my subscription"), ("agent", "It is cancelled.")),
    ),
    Canary("malformed line (quarantine)", needles=("kestrel.moonfield",), where="quarantine"),
    Canary("feedback: name, e-mail, phone", needles=("brennecke", "odalys"), digits=("442079460321",)),
    Canary("feedback: card split by soft hyphens", digits=("5425233430109903",)),
]
QUARANTINE_LINE = '{"conversation_id": "broken-canary", "turns": [{"role": "customer", "text": "kestrel.moonfield@example.com"'


def conversation_lines() -> list[str]:
    """The planted conversations (one per conversation canary) and the malformed line."""
    lines = []
    for n, c in enumerate(x for x in CANARIES if x.turns):
        conv = {
            "conversation_id": c.conversation_id or f"canary-{n:02d}",
            "channel": "chat",
            "created_at": f"2026-02-{n + 1:02d}T10:00:00Z",
            "turns": [{"role": role, "text": text} for role, text in c.turns],
            "metadata": {"source": "canary", **c.metadata},
        }
        lines.append(json.dumps(conv, ensure_ascii=False))
    return [*lines, QUARANTINE_LINE]


def feedback_lines() -> list[str]:
    base = {"model_id": "m", "index_version": "sample", "data_rev": "sample", "latency_ms": 800.0}
    events = [
        {
            "generation_id": "gen-canary-1",
            "ts": "2026-02-20T10:00:00Z",
            "query": "my name is Odalys Brennecke, email odalys.b@example.com, call +44 20 7946 0321. How do I apply?",
            "answer": "Odalys, you can apply online.",
            "rating": -1,
            "correction": "Tell Odalys Brennecke to apply online or by phone.",
        },
        {
            "generation_id": "gen-canary-2",
            "ts": "2026-02-21T10:00:00Z",
            "query": f"why was my card 5425{SHY}2334{SHY}3010{SHY}9903 charged for benefits?",
            "answer": "Benefits are free to apply for.",
            "rating": 1,
        },
    ]
    return [json.dumps({**base, "prompt_tokens": 10, "completion_tokens": 5, **e}, ensure_ascii=False) for e in events]


def plant(sample: Path) -> None:
    """Append the canaries to a workspace's raw sample (``data/sample``)."""
    for name, lines in (("conversations.jsonl", conversation_lines()), ("feedback.jsonl", feedback_lines())):
        with (sample / name).open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_NOT_DIGIT = re.compile(r"\D+")


def _views(data: bytes) -> tuple[str, str, str]:
    """(text with JSON escapes decoded, that text folded and without invisible characters, digit runs per line)."""
    from llmops.pii.normalize import strip_invisible

    text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), data.decode("utf-8", errors="ignore"))
    folded = strip_invisible(text).casefold()
    digits = "\n".join(_NOT_DIGIT.sub("", line) for line in strip_invisible(text).splitlines())
    return text, folded, digits


def find_canaries(paths: Iterable[Path], canaries: Iterable[Canary] = CANARIES) -> dict[str, list[str]]:
    """Canary category -> files (under ``paths``) that hold one of its values."""
    wanted = list(canaries)
    hits: dict[str, list[str]] = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        for f in files:
            data = f.read_bytes()
            text, folded, digits = _views(data)
            binary = b"\x00" in data[:8192]
            for c in wanted:
                found = any(n.casefold() in folded for n in c.needles) or any(d in digits for d in c.digits)
                found = found or (not binary and any(ch in text for ch in c.chars))
                if found:
                    hits.setdefault(c.category, []).append(str(f))
    return hits


def test_nightly_with_canaries_leaks_nothing_to_any_sink(
    workspace: Path, prefect_api: None, settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.fernet import Fernet

    from flows.nightly import nightly
    from llmops import workspace as ws
    from llmops.config import Settings
    from llmops.data.incremental import cache_path
    from llmops.data.purge import PRIVATE_CACHES, purge_private
    from llmops.versioning import read_lock

    sample = workspace / "data/sample"
    assert find_canaries([sample]) == {}, "a canary value occurs in the real sample: pick another"
    plant(sample)
    monkeypatch.setenv("LLMOPS_PII_VAULT_KEY", Fernet.generate_key().decode())  # the quarantine is sealed with it

    state = nightly(project_dir=str(workspace), return_state=True)
    assert state.is_completed(), state

    # The planted data went in: raw holds every canary, the local quarantine the malformed line (sealed).
    assert set(find_canaries([workspace / ws.RAW, workspace / ws.QUARANTINE])) == {c.category for c in CANARIES} - {
        "malformed line (quarantine)"
    }
    quarantine = (workspace / ws.QUARANTINE / "conversations.jsonl").read_text()
    assert "broken-canary" not in quarantine and '"sealed":true' in quarantine
    redacted = [
        json.loads(x) for p in sorted((workspace / ws.REDACTED_CONVERSATIONS).glob("*.jsonl")) for x in p.read_text().splitlines()
    ]
    crossed = [c for c in redacted if c["metadata"].get("source") == "canary"]
    leak_gate = json.loads((workspace / "metrics/redact.json").read_text())["leak_gate"]
    held = leak_gate["conversations"]["quarantined"]
    assert len(crossed) + held >= len([c for c in CANARIES if c.turns]), (len(crossed), leak_gate)

    # Nothing before the boundary was pushed: no raw/clean/quarantine object is in the remote.
    settings = Settings()
    remote = settings.home_dir / "dvc-remote"
    assert any(remote.rglob("*")), "the nightly pushed nothing"
    lock = read_lock(workspace)["stages"]
    cache = workspace / ".dvc/cache/files/md5"

    def objects(md5: str) -> set[str]:
        listing = cache / md5[:2] / md5[2:]
        return {md5} | ({e["md5"] for e in json.loads(listing.read_text())} if md5.endswith(".dir") else set())

    paths = {str(p) for p in (ws.RAW, ws.CLEAN, ws.QUARANTINE, ws.REDACT_QUARANTINE)}
    outs = [o for st in lock.values() for o in st.get("outs", [])]
    private = set().union(*(objects(o["md5"]) for o in outs if o["path"] in paths))
    public = set().union(*(objects(o["md5"]) for o in outs if o["path"] not in paths))
    assert len([o for o in outs if o["path"] in paths]) == 4
    pushed = {p.parent.name + p.name for p in remote.rglob("*") if p.is_file()}
    assert not (private - public) & pushed, "a pre-boundary object is in the remote"
    assert public & pushed  # the comparison is on the remote's real layout

    # Before the boundary by design, like data/raw and data/clean: the ingest and clean stages' record caches
    # in the state directory. Owner-only, and gone after `llmops pii purge`.
    private = [cache_path(settings.home_dir, stage) for stage in PRIVATE_CACHES]
    assert find_canaries(p for p in private if p.exists()), "the canaries should be visible before the boundary"
    assert all(p.stat().st_mode & 0o077 == 0 for p in private if p.exists())

    # Every sink: the whole state directory (DVC remote, Chroma, registry, history, runs, generation log,
    # Prefect-side files) but those caches, and the workspace's outputs after the boundary.
    state_files = [p for p in settings.home_dir.rglob("*") if p.is_file() and not any(p.name.startswith(c.name) for c in private)]
    assert any(p.parent.name == "incremental" for p in state_files)  # the caches after the boundary are scanned
    sinks = [
        *state_files,
        workspace / ws.REDACTED,
        workspace / ws.FEEDBACK,
        workspace / ws.TRAINSET,
        workspace / "data/index",
        workspace / "reports",
        workspace / "metrics",
        workspace / "metrics.json",
        workspace / "dvc.lock",
        workspace / "models",
    ]
    assert find_canaries(sinks) == {}

    # After a purge the whole state directory holds no canary.
    purge_private(workspace, state_dir=settings.home_dir)
    assert not any(p.exists() for p in private)
    assert find_canaries([settings.home_dir]) == {}
