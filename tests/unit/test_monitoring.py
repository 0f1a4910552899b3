"""Triggers, production quality windows, history + trend page and the webhook, on hand-checked cases."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llmops.config import MonitorParams
from llmops.monitoring.drift import guess_language, new_vocab_share
from llmops.monitoring.history import History, HistoryEntry, key_metrics
from llmops.monitoring.monitor import observe_run
from llmops.monitoring.quality import quality_alerts, quality_report, quality_stats, split_windows
from llmops.monitoring.triggers import decide_retrain, notify, slack_payload
from llmops.records import FeedbackEvent
from llmops.reports.drift import DriftReport
from tests.factories import Webhook

CFG = MonitorParams(quality_current_days=7, quality_min_answers=5)


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("How do I cancel my order?", "en"),
        ("cancel order", "en"),
        ("Je voudrais annuler ma commande s'il vous plaît, merci beaucoup", "other_latin"),
        ("Я хочу отменить заказ", "non_latin"),
        ("1234 !!", "none"),
    ],
)
def test_guess_language(text: str, lang: str) -> None:
    assert guess_language(text) == lang


def test_new_vocab_share() -> None:
    assert new_vocab_share(["cancel my order"], ["cancel my card now"]) == 0.5  # card, now are new
    assert new_vocab_share(["a"], []) == 0.0


def _event(i: int, day: int, *, rating: int | None = None, latency: float = 800.0, answer: str = "Renew.") -> FeedbackEvent:
    return FeedbackEvent(
        generation_id=f"g{i}",
        ts=datetime(2026, 2, 1, tzinfo=UTC) + timedelta(days=day),
        query="q",
        answer=answer,
        model_id="m",
        index_version="i",
        data_rev="d",
        latency_ms=latency,
        prompt_tokens=100,
        completion_tokens=20,
        rating=rating,
    )


def test_quality_windows_stats_and_alerts(tmp_path: Path) -> None:
    old = [_event(i, i % 10, rating=1 if i % 2 else None) for i in range(20)]  # days 0-9, half rated, all up
    sorry = "I'm sorry, I can't help"
    new = [_event(100 + i, 20 + i % 5, rating=-1 if i < 4 else 1, latency=3000, answer=sorry) for i in range(8)]
    ref, cur = split_windows(old + new, 7)
    assert len(ref) == 20 and len(cur) == 8
    s = quality_stats(cur)
    assert s["rating_rate"] == 1.0 and s["thumbs_down_share"] == 0.5 and s["refusal_rate"] == 1.0
    assert quality_stats(ref)["rating_rate"] == 0.5 and quality_stats(ref)["thumbs_down_share"] == 0.0
    alerts = quality_alerts(quality_stats(ref), s, CFG)
    assert len(alerts) == 3 and alerts[0].startswith("thumbs-down share 0.00 -> 0.50")
    result = quality_report(old + new, CFG, tmp_path)
    assert result.quality_drop and "latency_ms" in result.drifted_columns
    assert (tmp_path / "quality.html").exists()
    assert not quality_report(old, CFG).quality_drop
    assert not quality_alerts(quality_stats(ref), s, CFG.model_copy(update={"quality_min_answers": 10}))  # 8 < 10


def test_decide_retrain_reasons() -> None:
    calm = DriftReport.model_validate({"drift_detected": False, "drifted_signals": [], "quality": {"alerts": []}})
    assert not decide_retrain(calm, CFG).retrain
    assert not decide_retrain(None, CFG).retrain  # the run did not monitor
    assert decide_retrain(calm, CFG).reason == "no trigger"
    drifted = DriftReport(drift_detected=True, drift_share=0.7, drifted_signals=["channel", "query_embeddings"])
    d = decide_retrain(drifted, CFG)
    assert d.retrain and d.reasons == ["data drift: channel, query_embeddings (drifted share 0.70, threshold 0.5)"]
    # a metric drop beyond max_metric_drop (0.05) triggers; a smaller one does not
    prev = {"answers.token_f1": 0.30, "retrieval.recall@5": 0.80}
    d = decide_retrain(calm, CFG, metrics={"answers.token_f1": 0.20, "retrieval.recall@5": 0.78}, previous_metrics=prev)
    assert d.retrain and d.reasons == ["quality drop: answers.token_f1 0.3000 -> 0.2000 (-0.1000 > 0.05)"]
    d = decide_retrain(DriftReport.model_validate({"quality": {"alerts": ["refusal rate 0.00 -> 0.50 (+0.50 > 0.1)"]}}), CFG)
    assert d.reasons == ["quality drop: refusal rate 0.00 -> 0.50 (+0.50 > 0.1)"]


def test_notify_posts_slack_json_and_survives_a_dead_webhook(webhook: Webhook) -> None:
    d = decide_retrain(DriftReport(drift_detected=True, drift_share=1.0, drifted_signals=["intent"]), CFG)
    assert notify(webhook.url, slack_payload(d, flow="monitor", run_id="r1", report_url="file:///x.html"))
    msg = webhook.received[0]
    assert msg["text"].startswith("llmops monitor run r1: retrain triggered: data drift: intent")
    assert "<file:///x.html|trend report>" in msg["blocks"][1]["text"]["text"]
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    assert notify(dead, {"text": "x"}, timeout=2) is False


def test_history_trend_and_trigger_across_runs(tmp_path: Path, webhook: Webhook) -> None:
    history = History(str(tmp_path / "history"))
    report = tmp_path / "report.html"
    report.write_text("<html>evidently</html>")
    calm = DriftReport(drift_detected=False, drift_share=0.1, drifted_signals=[], new_vocab_share=0.2)
    evaluation = {"answers": {"token_f1": 0.30}, "retrieval": {"recall@5": 0.8}, "slices": {}}
    trend = tmp_path / "trend.html"
    e1, d1 = observe_run(history, CFG, flow="nightly", run_id="r1", drift=calm, evaluation=evaluation,
                         reports={"drift_html": report}, trend_page=trend, webhook=webhook.url)  # fmt: skip
    assert not d1.retrain and webhook.received == []  # nothing to tell
    queries = {"score": 0.97, "threshold": 0.8, "method": "model", "detected": True, "reference_rows": 500, "current_rows": 500}
    shifted = DriftReport.model_validate({"drift_detected": True, "drift_share": 0.8, "drifted_signals": ["channel", "intent"],
                                          "new_vocab_share": 0.5, "embeddings": {"queries": queries}})  # fmt: skip
    e2, d2 = observe_run(history, CFG, flow="monitor", run_id="r2", drift=shifted, reports={"drift_html": report},
                         trend_page=trend, webhook=webhook.url)  # fmt: skip
    assert d2.retrain and "channel, intent" in d2.reason
    entries = history.entries()
    assert [e.run_id for e in entries] == ["r1", "r2"]
    assert entries[1].trigger["retrain"] and "data drift" in entries[1].trigger["reason"]
    assert entries[0].metrics == {"answers.token_f1": 0.3, "retrieval.recall@5": 0.8} and entries[1].metrics == {}
    assert Path(entries[1].reports["drift_html"]).read_text() == "<html>evidently</html>"  # archived copy
    page = trend.read_text()
    assert page.count("data:image/png;base64,") == 3 and "data drift: channel, intent" in page
    assert entries[1].reports["drift_html"].endswith("report.html") and Path(entries[1].reports["drift_html"]).name in page
    assert len(webhook.received) == 1 and "retrain triggered" in webhook.received[0]["text"]
    assert key_metrics({"answers": {"token_f1": 0.5, "answers": 3}}) == {"answers.token_f1": 0.5}
    assert isinstance(e1, HistoryEntry) and e2.key.endswith("-monitor-r2")


def test_observe_workspace_reads_only_what_the_run_produced(settings_env: Path, tmp_path: Path) -> None:
    from llmops.config import Settings
    from llmops.monitoring.monitor import observe_workspace

    ws = tmp_path / "ws"
    (ws / "reports/drift").mkdir(parents=True)
    (ws / "reports/drift/drift.json").write_text(
        json.dumps({"drift_detected": True, "drift_share": 0.9, "drifted_signals": ["intent"]})
    )
    (ws / "reports/drift/report.html").write_text("<html></html>")
    (ws / "metrics.json").write_text(json.dumps({"answers": {"token_f1": 0.2}}))
    settings = Settings()
    retrain = observe_workspace(ws, settings, CFG, flow="retrain", run_id="a", evaluated=True, monitored=False)
    assert retrain.retrain is False and retrain.launch is False  # drift.json is an earlier run's
    mon = observe_workspace(ws, settings, CFG.model_copy(update={"retrain_on_trigger": False}), flow="monitor", run_id="b",
                            evaluated=False, monitored=True)  # fmt: skip
    assert mon.retrain is True and mon.launch is False and mon.reason.startswith("data drift: intent")
    entries = History(settings.history).entries()
    assert [(e.flow, bool(e.metrics), bool(e.reports)) for e in entries] == [("retrain", True, False), ("monitor", False, True)]
    assert Path(mon.trend_page).exists()
