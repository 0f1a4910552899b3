"""drift.json through one model, and the monitor's checks that do not depend on the new batch computed once:
cached vectors for the reference window and documents, kept document-drift and quality results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmops.config import MonitorParams
from llmops.errors import DataContractError
from llmops.jsonl import read_jsonl
from llmops.monitoring.embeddings import CachedEmbedder
from llmops.monitoring.monitor import monitor_batch
from llmops.records import Document, FeedbackEvent
from llmops.reports.drift import DriftReport

ROOT = Path(__file__).resolve().parents[2]


class _Loads:
    """``make`` for a :class:`CachedEmbedder`: the real embedder, counting how often it was asked for."""

    def __init__(self, embedder: Any) -> None:
        self.embedder, self.calls = embedder, 0

    def __call__(self) -> Any:
        self.calls += 1
        return self.embedder


def _refuse() -> Any:
    raise AssertionError("the embedding model was loaded although every vector was cached")


def test_cached_embedder_embeds_each_text_once_and_keeps_only_what_a_run_used(tmp_path: Path, embedder: Any) -> None:
    path, texts = tmp_path / "embeddings.sqlite", ["cancel my order", "where is my card", "reset my password"]
    make = _Loads(embedder)
    first = CachedEmbedder(make, "space-a", path)
    vectors = first.embed(texts)
    assert vectors == embedder.embed(texts) and make.calls == 1 and (first.embedded, first.reused) == (3, 0)
    assert first.embed(texts[:1]) == vectors[:1] and first.reused == 1  # within a run as well
    first.close()
    again = CachedEmbedder(_refuse, "space-a", path)  # every text cached: no model, even for its id
    assert again.embed(texts[:2]) == vectors[:2] and not again.loaded and again.embedder_id == embedder.embedder_id
    again.close()  # the third text was not used by this run: its vector is deleted
    third = CachedEmbedder(make, "space-a", path)
    redone = third.embed(texts)
    assert redone[:2] == vectors[:2] and (third.embedded, third.reused) == (1, 2) and make.calls == 2
    assert np.allclose(redone[2], vectors[2], atol=1e-5)  # embedded alone, not in a padded batch: float rounding
    third.close()
    other = CachedEmbedder(make, "space-b", path)  # another model: nothing reused
    other.embed(texts[:1])
    assert other.embedded == 1 and make.calls == 3
    other.close()


def test_monitor_keeps_document_and_quality_checks_while_their_inputs_hold(tmp_path: Path, embedder: Any) -> None:
    docs = read_jsonl(ROOT / "data/sample/documents.jsonl", Document)[:8]
    feedback = read_jsonl(ROOT / "data/sample/feedback.jsonl", FeedbackEvent)
    cfg, state = MonitorParams(quality_current_days=2, min_current_rows=30), tmp_path / "state"

    def run(make: Any, current_docs: list[Document], out: str) -> DriftReport:
        cached = CachedEmbedder(make, "space", state / "embeddings.sqlite")
        try:
            return monitor_batch([], [], cfg, tmp_path / out, feedback=feedback, reference_documents=docs[:4],
                                 current_documents=current_docs, embedder=cached, state_dir=state)  # fmt: skip
        finally:
            cached.close()

    first = run(_Loads(embedder), docs[4:], "first")
    assert first.skipped is not None and "documents" in first.embeddings and first.quality is not None
    # Same documents and log: neither the model nor Evidently runs again; the result and quality page are the same.
    second = run(_refuse, docs[4:], "second")
    assert second.embeddings == first.embeddings and second.quality == first.quality
    assert (tmp_path / "second/quality.html").read_bytes() == (tmp_path / "first/quality.html").read_bytes()
    # A changed document is a new input: the check runs again (its new text is embedded, the rest reused).
    changed = [*docs[4:7], docs[7].model_copy(update={"text": docs[7].text + " New paragraph."})]
    make = _Loads(embedder)
    third = run(make, changed, "third")
    assert make.calls == 1 and third.embeddings["documents"].current_rows == 4


def test_drift_report_reads_back_as_written_and_names_a_bad_file(tmp_path: Path) -> None:
    report = DriftReport(skipped="skipped: 2 current conversations < monitor.min_current_rows 30", current_rows=2)
    path = report.write(tmp_path)
    assert json.loads(path.read_text()) == {"skipped": report.skipped, "current_rows": 2}  # only what was set
    assert DriftReport.read(tmp_path) == report
    # A file written before the embedding and vocabulary signals: its drifted columns are its signals.
    path.write_text(json.dumps({"drift_detected": True, "drift_share": 0.6, "drifted_columns": ["intent"]}))
    assert DriftReport.read(path).drifted_signals == ["intent"]
    path.write_text(json.dumps({"drift_detected": "maybe"}))
    with pytest.raises(DataContractError, match="drift_detected"):
        DriftReport.read(path)
    with pytest.raises(DataContractError, match="monitor stage writes it"):
        DriftReport.read(tmp_path / "missing.json")
