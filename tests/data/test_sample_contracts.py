"""Contracts on the real files: the shipped sample and the converters over ../shared/data."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from llmops.data.ingest import parse_jsonl
from llmops.data.sources import (
    banking77_conversations,
    bitext_conversations,
    doc2dial_documents,
    doc2dial_questions,
    twitter_conversations,
)
from llmops.jsonl import read_jsonl
from llmops.records import Conversation, Document, EvalQuestion, FeedbackEvent

SAMPLE = Path(__file__).resolve().parents[2] / "data/sample"


def test_sample_files_follow_their_contracts() -> None:
    docs = read_jsonl(SAMPLE / "documents.jsonl", Document)
    questions = read_jsonl(SAMPLE / "eval_questions.jsonl", EvalQuestion)
    events = read_jsonl(SAMPLE / "feedback.jsonl", FeedbackEvent)
    reference = read_jsonl(SAMPLE / "reference_conversations.jsonl", Conversation)
    assert len(docs) == 60 and len(questions) == 120 and len(events) == 40 and len(reference) == 360
    doc_ids = {d.doc_id for d in docs}
    assert all(set(q.gold_doc_ids) <= doc_ids for q in questions), "every gold doc is in the knowledge base"
    assert len({q.id for q in questions}) == len(questions)
    eval_queries = {q.query.casefold() for q in questions}
    assert not any(e.query.casefold() in eval_queries for e in events), "feedback never repeats an eval question"


def test_sample_conversations_have_exactly_the_two_planted_bad_lines() -> None:
    result = parse_jsonl((SAMPLE / "conversations.jsonl").read_bytes(), Conversation, "sample")
    assert result.counts() == {"in": 482, "out": 480, "quarantined": 2}
    assert {c.channel for c in result.records} == {"chat", "twitter"}


def test_sample_doc2dial_dialogues_are_about_the_kb_and_never_a_gate_dialogue() -> None:
    convs = parse_jsonl((SAMPLE / "conversations.jsonl").read_bytes(), Conversation, "sample").records
    dialogues = [c for c in convs if c.metadata.get("source") == "doc2dial"]
    doc_ids = {d.doc_id for d in read_jsonl(SAMPLE / "documents.jsonl", Document)}
    eval_dialogues = {q.id.rsplit("_", 1)[0] for q in read_jsonl(SAMPLE / "eval_questions.jsonl", EvalQuestion)}
    assert len(dialogues) == 120
    assert all(c.metadata["doc_id"] in doc_ids for c in dialogues)
    assert not {c.conversation_id for c in dialogues} & eval_dialogues
    assert all({t.role for t in c.turns} == {"customer", "agent"} for c in dialogues)


def test_sample_size_stays_small() -> None:
    total = sum(p.stat().st_size for p in SAMPLE.glob("*.jsonl"))
    assert total < 3 * 1024 * 1024


def test_converters_on_shared_data(shared_data: Path) -> None:
    bitext = list(
        itertools.islice(
            bitext_conversations(shared_data / "bitext-customer-support/Bitext_Sample_Customer_Support_Training_Dataset.csv"), 50
        )
    )
    assert all(c.turns[0].role == "customer" and c.metadata["intent"] for c in bitext)
    twitter = list(twitter_conversations(shared_data / "twitter-customer-care-cdp/dev.json"))
    assert len(twitter) == 525 and all(c.channel == "twitter" for c in twitter)
    banking = list(itertools.islice(banking77_conversations(shared_data / "banking77/train.csv"), 10))
    assert banking[0].metadata["category"] == "BANKING"
    docs = list(doc2dial_documents(shared_data / "doc2dial-rag/corpus.jsonl"))
    assert len(docs) == 178
    qs = list(doc2dial_questions(shared_data / "doc2dial-rag/questions.jsonl"))
    assert len(qs) == 475 and {q.gold_doc_ids[0] for q in qs} <= {d.doc_id for d in docs}
    # The converters produce what the contracts accept when round-tripped through JSON.
    line = json.dumps(json.loads(twitter[0].model_dump_json())).encode()
    assert parse_jsonl(line, Conversation, "x").counts()["out"] == 1
