"""A nightly run, then a monitor run on a shifted batch: drift is named, retrain runs with the reason
recorded, the webhook hears about it and the trend page shows both runs."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from llmops.config import Settings
from llmops.data.sources import banking77_conversations
from llmops.jsonl import write_jsonl
from llmops.records import Conversation
from tests.factories import Webhook

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2700)]  # three flow runs on 2 shared cores


@pytest.fixture()
def notify_hook(webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> Webhook:
    monkeypatch.setenv("LLMOPS_NOTIFY_WEBHOOK", webhook.url)
    return webhook


def test_shifted_batch_triggers_retrain(workspace: Path, shared_data: Path, notify_hook: Webhook) -> None:
    from prefect.testing.utilities import prefect_test_harness

    from flows.monitor import monitor
    from flows.nightly import nightly
    from llmops.monitoring.history import History

    sample = workspace / "data/sample"
    banking = list(banking77_conversations(shared_data / "banking77/train.csv"))[::100][:120]
    # Yesterday's batch is the reference window (same source), so the nightly run sees no drift.
    batch = []
    for line in (sample / "conversations.jsonl").read_text().splitlines():
        try:
            batch.append(Conversation.model_validate_json(line))
        except ValidationError:
            pass  # the sample's two malformed lines: ingest quarantines them
    write_jsonl(sample / "reference_conversations.jsonl", batch)
    # Tomorrow's batch arrives after everything the archive holds (the monitor looks at what is new).
    newest = max(c.created_at for c in batch)
    banking = [c.model_copy(update={"created_at": newest + timedelta(minutes=i + 1)}) for i, c in enumerate(banking)]
    with prefect_test_harness(server_startup_timeout=120):
        first = nightly(project_dir=str(workspace))
        assert first.gate is not None  # gated against the base
        assert first.gate.evidence["decision"] in {"promote", "reject", "no change"}
        write_jsonl(sample / "conversations.jsonl", banking)  # tomorrow's batch: another domain
        summary = monitor(project_dir=str(workspace))
        again = monitor(project_dir=str(workspace))  # nothing new: the stage is skipped, its old drift not re-recorded

    assert summary.reason and summary.reason.startswith("retrain triggered: data drift:") and "channel" in summary.reason
    settings = Settings()
    entries = History(settings.history).entries()
    assert [e.flow for e in entries] == ["nightly", "monitor", "retrain", "monitor"]  # monitor launched retrain as a subflow
    nightly_e, monitor_e, retrain_e, again_e = entries
    assert again.reason is None and not again_e.drift and not again_e.trigger["retrain"]
    assert not nightly_e.drift["drift_detected"] and not nightly_e.trigger["retrain"] and monitor_e.drift["drift_detected"]
    assert monitor_e.trigger["retrain"] and "intent" in monitor_e.trigger["reason"]
    assert "answers.token_f1" in nightly_e.metrics
    # The shifted batch has customer turns only (no agent answers): nothing new to train on, so the
    # triggered retrain records its reason and skips training instead of retraining on the same data.
    runs = sorted(settings.path("runs").glob("*-retrain.json"))
    retrain_run = json.loads(runs[-1].read_text())
    assert retrain_run["reason"].startswith("monitor: data drift:")
    assert "0 new training examples" in retrain_run["skipped"] and retrain_e.metrics == {}
    page = settings.path("trend.html").read_text()
    assert "data drift:" in page and page.count("<tr>") == 1 + 4
    assert any("retrain triggered" in m["text"] for m in notify_hook.received)
