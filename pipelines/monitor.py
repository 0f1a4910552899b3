"""Stage `monitor`: Evidently drift report of the current batch against the reference window."""

from __future__ import annotations

from llmops import workspace as ws
from llmops.jsonl import read_jsonl
from llmops.monitoring import drift_report
from llmops.records import Conversation
from pipelines._stage import setup


def main() -> None:
    params, _ = setup("monitor")
    result = drift_report(
        read_jsonl(params.monitor.reference, Conversation),
        read_jsonl(ws.REDACTED / "conversations.jsonl", Conversation),
        params.monitor,
        ws.DRIFT_DIR,
    )
    print({k: v for k, v in result.as_dict().items() if k != "columns"})


if __name__ == "__main__":
    main()
