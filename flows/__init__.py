"""Prefect flows: schedules, triggers, retries, timeouts and artifacts. They only compose library calls."""
