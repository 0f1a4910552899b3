"""Run history: every run's key metrics, drift results and trigger decision, appended to an object store.

Layout under the history URI (a local directory or ``s3://bucket/prefix``)::

    runs/<stamp>-<flow>-<run>.json       one :class:`HistoryEntry` per run (never rewritten)
    reports/<stamp>-<flow>-<run>/*.html that run's Evidently reports, archived so old links keep working
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmops.errors import DataContractError
from llmops.reports.drift import DriftReport
from llmops.storage import ObjectStore, store_for

# The metrics a reader follows across runs: (group, key) in metrics.json.
KEY_METRICS = [
    ("retrieval", "recall@5"),
    ("retrieval", "mrr"),
    ("answers", "token_f1"),
    ("answers", "rouge_l"),
    ("groundedness", "groundedness"),
    ("heuristics", "refusal_rate"),
    ("judge", "faithfulness"),
]


@dataclass
class HistoryEntry:
    run_id: str
    flow: str
    ts: str
    data_rev: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    drift: dict[str, Any] = field(default_factory=dict)
    trigger: dict[str, Any] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        stamp = self.ts.replace(":", "").replace("-", "")[:15]
        return f"{stamp}-{self.flow}-{''.join(ch for ch in self.run_id if ch.isalnum())[:8]}"


def key_metrics(evaluation: dict[str, Any]) -> dict[str, float]:
    """Flatten metrics.json to the followed metrics (``answers.token_f1`` ...); absent ones are left out."""
    out = {}
    for group, name in KEY_METRICS:
        value = evaluation.get(group, {}).get(name)
        if isinstance(value, int | float):
            out[f"{group}.{name}"] = float(value)
    return out


def drift_summary(drift: DriftReport) -> dict[str, Any]:
    """The part of drift.json worth keeping per run (no per-column detail)."""
    quality = drift.quality
    return {
        "drift_detected": drift.drift_detected,
        "drift_share": drift.drift_share,
        "drifted_signals": drift.drifted_signals,
        "new_vocab_share": drift.new_vocab_share,
        "embeddings": {k: v.score for k, v in drift.embeddings.items()},
        "quality": quality.current if quality is not None else {},
        "quality_alerts": quality.alerts if quality is not None else [],
        "rows": {"reference": drift.reference_rows, "current": drift.current_rows},
    }


class History:
    """Append and read run entries under ``uri``; reports are copied next to them."""

    def __init__(
        self, uri: str, *, store: ObjectStore | None = None, endpoint_url: str | None = None, region: str | None = None
    ) -> None:
        self.uri = uri.rstrip("/")
        self.store = store or store_for(self.uri, endpoint_url=endpoint_url, region=region)

    @classmethod
    def from_settings(cls, settings: Any, uri: str | None = None) -> History:
        """The run history of ``settings`` (``LLMOPS_HISTORY_URI``, or ``uri``) on the configured S3 endpoint
        and region (``LLMOPS_S3_ENDPOINT_URL``, ``LLMOPS_S3_REGION``) when it is an ``s3://`` URI."""
        return cls(uri or settings.history, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)

    def _join(self, *parts: str) -> str:
        return "/".join([self.uri, *parts])

    def append(self, entry: HistoryEntry, reports: dict[str, Path] | None = None) -> HistoryEntry:
        """Archive ``reports`` (name -> local file) and write the entry; returns it with report URIs."""
        for name, path in (reports or {}).items():
            if path.exists():
                uri = self._join("reports", entry.key, path.name)
                self.store.write_bytes(uri, path.read_bytes())
                entry.reports[name] = uri
        self.store.write_bytes(self._join("runs", f"{entry.key}.json"), json.dumps(asdict(entry), indent=2).encode())
        return entry

    def entries(self) -> list[HistoryEntry]:
        """All runs, oldest first."""
        out = []
        for uri in self.store.list(self._join("runs") + "/"):
            if not uri.endswith(".json"):
                continue
            try:
                out.append(HistoryEntry(**json.loads(self.store.read_bytes(uri))))
            except (json.JSONDecodeError, TypeError) as exc:
                msg = f"history entry {uri} is not a run entry ({exc}): move it out of {self.uri}/runs"
                raise DataContractError(msg) from exc
        return sorted(out, key=lambda e: e.ts)

    def last(self, flow_with_metrics: bool = False) -> HistoryEntry | None:
        entries = [e for e in self.entries() if e.metrics or not flow_with_metrics]
        return entries[-1] if entries else None
