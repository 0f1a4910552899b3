"""The redaction boundary: redact a batch, then leak-scan what was produced with the same detector.

A record with a residual finding does not cross: it is quarantined (its pre-redaction version, whole,
with the reason) and the run goes on. Only when more than ``redact.max_leak_share`` of the records are
held back does :meth:`BoundaryResult.check` fail the run: at that rate the detector has regressed, and
publishing the rest would be guessing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from llmops.errors import PIILeakError
from llmops.pii.redact import Redactor
from llmops.pii.scan import Finding, Scanner, record_texts
from llmops.records import Conversation, Document, FeedbackEvent, Quarantined

R = TypeVar("R", bound=BaseModel)


@dataclass
class Crossing(Generic[R]):
    """One kind of record through the boundary: what crossed and what was held back."""

    kind: str
    records_in: int
    records: list[R] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    residual: Counter[str] = field(default_factory=Counter)
    # Records streamed to disk instead of kept in ``records`` / ``quarantined`` (the partitioned redact stage).
    streamed_out: int = 0
    streamed_held: int = 0

    @property
    def out(self) -> int:
        return len(self.records) + self.streamed_out

    @property
    def held(self) -> int:
        return len(self.quarantined) + self.streamed_held

    def counts(self) -> dict[str, Any]:
        return {
            "in": self.records_in,
            "out": self.out,
            "quarantined": self.held,
            "residual_types": dict(sorted(self.residual.items())),
        }


@dataclass
class BoundaryResult:
    conversations: Crossing[Conversation]
    feedback: Crossing[FeedbackEvent]
    documents: Crossing[Document]
    max_leak_share: float

    @property
    def crossings(self) -> list[Crossing[Any]]:
        return [self.conversations, self.feedback, self.documents]

    @property
    def leak_share(self) -> float:
        total = sum(c.records_in for c in self.crossings)
        return sum(c.held for c in self.crossings) / total if total else 0.0

    def report(self) -> dict[str, Any]:
        """The leak gate's figures for ``metrics/redact.json`` (types and counts only, never values)."""
        return {
            **{c.kind: c.counts() for c in self.crossings},
            "leak_share": round(self.leak_share, 6),
            "max_leak_share": self.max_leak_share,
            "passed": self.leak_share <= self.max_leak_share,
        }

    def check(self) -> None:
        """Raise :class:`PIILeakError` when more than ``max_leak_share`` of the records were held back."""
        if self.leak_share <= self.max_leak_share:
            return
        held = ", ".join(f"{c.kind}: {c.held}/{c.records_in}" for c in self.crossings if c.held)
        types = Counter[str]()
        for c in self.crossings:
            types.update(c.residual)
        raise PIILeakError(
            f"{self.leak_share:.2%} of the records still hold personal data after redaction ({held}; "
            f"types: {dict(types)}), above redact.max_leak_share={self.max_leak_share:.2%}: nothing was published. "
            "The records are in data/redact-quarantine with their reasons; fix the detector (redact.entities, "
            "score_threshold, rules) or raise redact.max_leak_share, then rerun the redact stage."
        )


def _reason(findings: Sequence[Finding]) -> str:
    where = "; ".join(f"{f.entity_type} at {f.location.split(':', 1)[1]}" for f in findings[:5])
    more = f" (+{len(findings) - 5} more)" if len(findings) > 5 else ""
    return f"residual personal data after redaction: {where}{more}"


def residual_findings(kind: str, after: Sequence[R], scanner: Scanner) -> dict[int, list[Finding]]:
    """Leak-scan findings of redacted records, by index in ``after``."""
    findings: dict[int, list[Finding]] = {}
    for f in scanner.scan(record_texts(after, kind)):
        findings.setdefault(int(f.location.split("#", 1)[1].split(":", 1)[0]), []).append(f)
    return findings


def quarantine_reason(findings: Sequence[Finding]) -> str:
    """Why a redacted record is held back: types and locations of what the leak scan still found, no values."""
    return _reason(findings)


def _cross(kind: str, before: Sequence[R], after: Sequence[R], scanner: Scanner) -> Crossing[R]:
    findings = residual_findings(kind, after, scanner)
    crossing: Crossing[R] = Crossing(kind=kind, records_in=len(before))
    for i, (orig, red) in enumerate(zip(before, after, strict=True)):
        if i not in findings:
            crossing.records.append(red)
            continue
        crossing.residual.update(f.entity_type for f in findings[i])
        crossing.quarantined.append(
            Quarantined(source=f"redact:{kind}", line_no=i + 1, reason=_reason(findings[i]), raw=orig.model_dump_json())
        )
    return crossing


def redact_batch(
    conversations: Sequence[Conversation],
    feedback: Sequence[FeedbackEvent],
    documents: Sequence[Document],
    redactor: Redactor,
    *,
    progress: bool = False,
) -> BoundaryResult:
    """Redact conversations, feedback events and documents, then leak-scan the result with the redactor's own
    detector (``redact.scan_entities`` at ``redact.score_threshold``); records with a residual finding are
    held back. Call :meth:`BoundaryResult.check` after writing the quarantine."""
    scanner = Scanner(redactor.cfg, redactor)
    red_c = redactor.redact_conversations(conversations, progress=progress)
    red_f = redactor.redact_feedback(feedback)
    red_d = redactor.redact_documents(documents)
    return BoundaryResult(
        conversations=_cross("conversations", conversations, red_c, scanner),
        feedback=_cross("feedback", feedback, red_f, scanner),
        documents=_cross("documents", documents, red_d, scanner),
        max_leak_share=redactor.cfg.max_leak_share,
    )
