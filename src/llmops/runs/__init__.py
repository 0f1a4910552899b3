"""What a pipeline run does around its stages, for the flows and the CLI to call (flows only compose).

- :mod:`llmops.runs.staleness`: the stages DVC cannot see are stale (remote sources, new log lines, a missing index);
- :mod:`llmops.runs.promotion`: the retrain policy's check, registering the evaluated adapter behind the gate,
  approvals and the gate report;
- :mod:`llmops.runs.records`: the run record's life (running, failed, crashed) and the trend page for failed runs;
- :mod:`llmops.runs.summary`: the completed run's summary and its markdown;
- :mod:`llmops.runs.status`: ``llmops status``.
"""
