"""Drift monitoring (the only subpackage that imports evidently)."""

from __future__ import annotations

from llmops.monitoring.drift import DriftResult, conversation_frame, drift_report

__all__ = ["DriftResult", "conversation_frame", "drift_report"]
