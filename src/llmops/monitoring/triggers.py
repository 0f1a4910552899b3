"""When to retrain, and telling people: thresholds from params, reasons in words, a Slack-compatible webhook.

Retrain when the batch drifts (Evidently share rule, new vocabulary, embedding drift), when production
quality drops (thumbs-down, refusals, latency) or when a followed evaluation metric falls by more than
``max_metric_drop`` against the previous run in the history. Every reason is kept for the run record.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from llmops.config import MonitorParams
from llmops.reports.drift import DriftReport

log = logging.getLogger(__name__)

# Higher is better for all followed metrics except these.
LOWER_IS_BETTER = {"heuristics.refusal_rate"}
GATED_METRICS = ["answers.token_f1", "retrieval.recall@5", "groundedness.groundedness"]


@dataclass
class TriggerDecision:
    retrain: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons) or "no trigger"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reason": self.reason}


def decide_retrain(
    drift: DriftReport | None,
    cfg: MonitorParams,
    *,
    metrics: dict[str, float] | None = None,
    previous_metrics: dict[str, float] | None = None,
) -> TriggerDecision:
    """Apply the thresholds to a drift report (None: the run did not monitor) and (flattened) key metrics of
    this and the previous run."""
    reasons = []
    if drift is not None and drift.drift_detected:
        reasons.append(
            f"data drift: {', '.join(drift.drifted_signals) or 'share rule'} "
            f"(drifted share {drift.drift_share or 0:.2f}, threshold {cfg.drift_share})"
        )
    if drift is not None and drift.quality is not None:
        reasons += [f"quality drop: {a}" for a in drift.quality.alerts]
    if metrics and previous_metrics:
        for name in GATED_METRICS:
            new, old = metrics.get(name), previous_metrics.get(name)
            if new is None or old is None:
                continue
            drop = (new - old) if name in LOWER_IS_BETTER else (old - new)
            if drop > cfg.max_metric_drop:
                reasons.append(f"quality drop: {name} {old:.4f} -> {new:.4f} (-{drop:.4f} > {cfg.max_metric_drop})")
    return TriggerDecision(bool(reasons), reasons)


def slack_payload(decision: TriggerDecision, *, flow: str, run_id: str, report_url: str | None = None) -> dict[str, Any]:
    """Slack incoming-webhook JSON (``text`` plus blocks); also accepted by Mattermost, Teams' Slack shim, etc."""
    action = "retrain triggered" if decision.retrain else "no action"
    text = f"llmops {flow} run {run_id}: {action}"
    lines = "\n".join(f"• {r}" for r in decision.reasons) or "• all signals within thresholds"
    if report_url:
        lines += f"\n<{report_url}|trend report>"
    return {
        "text": f"{text}: {decision.reason}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": text}},
            {"type": "section", "text": {"type": "mrkdwn", "text": lines}},
        ],
    }


def notify(url: str, payload: dict[str, Any], *, timeout: float = 10.0) -> bool:
    """POST ``payload`` as JSON. A failing webhook never fails the run: it is logged and reported as False."""
    import httpx

    try:
        httpx.post(url, json=payload, timeout=timeout).raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("notification to %s failed: %s (check LLMOPS_NOTIFY_WEBHOOK)", url, exc)
        return False
    return True


DRIFT_EVENT = "llmops.drift.detected"


def emit_drift_event(reason: str, *, run_id: str, project: str) -> str:
    """Tell the Prefect API (a server or Prefect Cloud) that retraining is due: the event
    ``llmops.drift.detected`` on resource ``llmops.project.<project>``, the reason in its payload. The retrain
    deployment's trigger (prefect.yaml) owns the reaction. Returns the event id ("" when not sent)."""
    from prefect.events import emit_event

    event = emit_event(
        event=DRIFT_EVENT,
        resource={"prefect.resource.id": f"llmops.project.{project}", "prefect.resource.name": project},
        payload={"reason": reason, "run_id": run_id},
    )
    return str(event.id) if event is not None else ""
