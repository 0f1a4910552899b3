"""Rebuild the shipped sample from ../shared/data (deterministic; run from the project root):

    python data/sample/build.py [--shared ../shared/data]

Writes documents, eval questions, feedback events, a current conversation batch and a reference batch
(for drift; already cleaned and redacted, as a processed earlier window) to data/sample/. The current
batch holds in-domain doc2dial dialogues about the sample's knowledge-base pages, never a dialogue an
eval question (the gate set) or a feedback event was taken from.
See data/sample/README.md for sources and licences.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
from collections.abc import Collection
from datetime import timedelta
from pathlib import Path

from llmops.config import CleanParams, RedactParams
from llmops.data import clean_conversations
from llmops.data.sources import (
    _stable_ts,
    bitext_conversations,
    doc2dial_documents,
    doc2dial_questions,
    twitter_conversations,
)
from llmops.jsonl import write_jsonl
from llmops.pii import Redactor
from llmops.records import Conversation, FeedbackEvent, Turn

OUT = Path(__file__).resolve().parent
DOCS_PER_DOMAIN = 20
EVAL_QUESTIONS = 120
FEEDBACK_EVENTS = 40
BITEXT_STRIDE, BITEXT_N = 15, 240
TWITTER_N = 120
DOC2DIAL_DIALOGUES = 120
# Two malformed lines ship with the sample on purpose: `make run` shows quarantine at work.
MALFORMED = [
    b'{"conversation_id": "broken-001", "channel": "chat", "created_at": "2026-02-01T10:00:00Z", "turns": []}',
    b'{"conversation_id": "broken-002", "channel": "email", "turns": [{"role": "customer", "text": "hi"',
]


def dialogue_of(question_id: str) -> str:
    """doc2dial question ids are ``<dialogue id>_<turn>``."""
    return question_id.rsplit("_", 1)[0]


def doc2dial_conversations(questions_path: Path, kb: Collection[str], exclude: Collection[str], n: int) -> list[Conversation]:
    """Whole doc2dial dialogues grounded in a ``kb`` page, as support conversations (text unchanged).

    A dialogue is its last user turn's history plus that turn; dialogues in ``exclude`` are left out.
    The ``n`` kept are the first by a hash of the dialogue id (stable across rebuilds).
    """
    last: dict[str, dict] = {}
    with questions_path.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["doc_id"] in kb and row["dial_id"] not in exclude:
                if row["dial_id"] not in last or row["turn_id"] > last[row["dial_id"]]["turn_id"]:
                    last[row["dial_id"]] = row
    picked = sorted(last, key=lambda d: hashlib.sha256(d.encode()).hexdigest())[:n]
    out = []
    for dial_id in sorted(picked):
        row = last[dial_id]
        turns = [Turn(role="customer" if h["role"] == "user" else "agent", text=h["text"]) for h in row["history"]]
        turns.append(Turn(role="customer", text=row["query"]))
        out.append(
            Conversation(
                conversation_id=dial_id,
                channel="chat",
                created_at=_stable_ts(dial_id),
                turns=turns,
                metadata={"source": "doc2dial", "domain": row["domain"], "doc_id": row["doc_id"]},
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", default="../shared/data", type=Path)
    args = ap.parse_args()
    shared: Path = args.shared

    questions = list(doc2dial_questions(shared / "doc2dial-rag/questions.jsonl"))
    per_doc = collections.Counter(q.gold_doc_ids[0] for q in questions)
    by_domain: dict[str, list[str]] = collections.defaultdict(list)
    domain_of = {}
    for line in (shared / "doc2dial-rag/corpus.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        domain_of[row["doc_id"]] = row["domain"]
    for doc_id in sorted(per_doc, key=lambda d: (-per_doc[d], d)):
        by_domain[domain_of[doc_id]].append(doc_id)
    keep = {d for ids in by_domain.values() for d in ids[:DOCS_PER_DOMAIN]}
    docs = [d for d in doc2dial_documents(shared / "doc2dial-rag/corpus.jsonl") if d.doc_id in keep]
    for d in docs:
        d.updated_at = _stable_ts(d.doc_id, span_days=365)
    write_jsonl(OUT / "documents.jsonl", docs)

    in_kb = [q for q in questions if q.gold_doc_ids[0] in keep]
    in_kb.sort(key=lambda q: hashlib.sha256(q.id.encode()).hexdigest())
    eval_qs = in_kb[:EVAL_QUESTIONS]
    eval_queries = {" ".join(q.query.casefold().split()) for q in eval_qs}
    # Feedback must never repeat an eval question (doc2dial has recurring first turns like "Hi").
    rest = [q for q in in_kb[EVAL_QUESTIONS:] if " ".join(q.query.casefold().split()) not in eval_queries]
    write_jsonl(OUT / "eval_questions.jsonl", sorted(eval_qs, key=lambda q: q.id))

    events = []
    for i, q in enumerate(rest[:FEEDBACK_EVENTS]):
        gid = f"gen-{i:04d}"
        good = i % 4 != 3
        answer = q.answer if good else "I'm sorry, I don't have information about that."
        events.append(
            FeedbackEvent(
                generation_id=gid,
                ts=_stable_ts(gid, span_days=7) + timedelta(days=40),
                query=q.query,
                answer=answer or "",
                retrieved_doc_ids=q.gold_doc_ids if good else [],
                model_id="SmolLM2-135M-Instruct",
                index_version="sample",
                data_rev="sample",
                latency_ms=850.0 + i,
                prompt_tokens=300 + i,
                completion_tokens=40 + i % 7,
                rating=None if i % 5 == 4 else (1 if good else -1),
                correction=None if good else q.answer,
                simulated=True,
            )
        )
    write_jsonl(OUT / "feedback.jsonl", events)

    bitext = list(bitext_conversations(shared / "bitext-customer-support/Bitext_Sample_Customer_Support_Training_Dataset.csv"))
    twitter = list(twitter_conversations(shared / "twitter-customer-care-cdp/dev.json"))
    # Gate-set and feedback dialogues never become training conversations.
    used = {dialogue_of(q.id) for q in eval_qs} | {dialogue_of(q.id) for q in rest[:FEEDBACK_EVENTS]}
    dialogues = doc2dial_conversations(shared / "doc2dial-rag/questions.jsonl", keep, used, DOC2DIAL_DIALOGUES)
    current = bitext[0::BITEXT_STRIDE][:BITEXT_N] + twitter[:TWITTER_N] + dialogues
    reference = bitext[7::BITEXT_STRIDE][:BITEXT_N] + twitter[TWITTER_N : 2 * TWITTER_N]
    # The drift reference is a processed window (as the monitor compares it with redacted data):
    # cleaned and pseudonymised with the default params, like an earlier nightly batch.
    reference, _ = clean_conversations(reference, CleanParams())
    reference = Redactor(RedactParams()).redact_conversations(reference)
    write_jsonl(OUT / "reference_conversations.jsonl", reference)
    write_jsonl(OUT / "conversations.jsonl", current)
    with (OUT / "conversations.jsonl").open("ab") as fh:
        fh.write(b"\n".join(MALFORMED) + b"\n")
    print(
        f"documents={len(docs)} eval_questions={len(eval_qs)} feedback={len(events)} "
        f"conversations={len(current)} (doc2dial {len(dialogues)})+{len(MALFORMED)} malformed reference={len(reference)}"
    )


if __name__ == "__main__":
    main()
