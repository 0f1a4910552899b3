"""Stage `clean`: normalise text and remove exact duplicates."""

from __future__ import annotations

from llmops import workspace as ws
from llmops.data import clean_conversations, clean_documents, clean_feedback
from llmops.jsonl import read_jsonl, write_json, write_jsonl
from llmops.records import Conversation, Document, FeedbackEvent
from pipelines._stage import setup


def main() -> None:
    params, _ = setup("clean")
    cfg = params.clean
    convs, c_stats = clean_conversations(read_jsonl(ws.RAW / "conversations.jsonl", Conversation), cfg)
    docs, d_stats = clean_documents(read_jsonl(ws.RAW / "documents.jsonl", Document), cfg)
    events, f_stats = clean_feedback(read_jsonl(ws.RAW / "feedback.jsonl", FeedbackEvent), cfg)
    write_jsonl(ws.CLEAN / "conversations.jsonl", convs)
    write_jsonl(ws.CLEAN / "documents.jsonl", docs)
    write_jsonl(ws.CLEAN / "feedback.jsonl", events)
    stats = {"conversations": c_stats.as_dict(), "documents": d_stats.as_dict(), "feedback": f_stats.as_dict()}
    write_json(ws.stage_metrics("clean"), stats)
    print(stats)


if __name__ == "__main__":
    main()
