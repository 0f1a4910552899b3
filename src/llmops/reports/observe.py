"""What a flow gets back from observing its run (history entry, retrain trigger, trend page): the monitor's
:func:`llmops.monitoring.monitor.observe_workspace` returns it, the flows act on it (launch a retrain, link the
trend page)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ObserveResult(BaseModel):
    """What a flow gets back from observing its run (:func:`llmops.monitoring.monitor.observe_workspace`):
    the retrain trigger's decision and whether to act on it, and where the history and trend page are."""

    model_config = ConfigDict(extra="forbid")

    retrain: bool  # a trigger fired
    reasons: list[str]
    reason: str  # the reasons joined, or "no trigger"
    launch: bool  # a trigger fired and monitor.retrain_on_trigger allows acting on it
    deployment: str  # the retrain deployment to start (monitor.retrain_deployment)
    trend_page: str
    history_entry: str
    notified: bool | None = None  # the webhook was told (None: no webhook or nothing to tell)
