"""Converters from public support datasets (../shared/data) to the project's data contracts.

Used to build the shipped sample (``data/sample/build.py``), by tests on real files and by benchmarks.
Text is never changed here; only the shape.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from llmops.records import Conversation, Document, EvalQuestion, Turn

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def _stable_ts(key: str, span_days: int = 60) -> datetime:
    """A deterministic timestamp for sources that have none (spread over ``span_days``)."""
    n = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    return _EPOCH + timedelta(seconds=n % (span_days * 86400))


def bitext_conversations(csv_path: str | Path) -> Iterator[Conversation]:
    """Bitext rows -> two-turn chat conversations; intent/category kept in metadata."""
    with Path(csv_path).open(encoding="utf-8", newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            cid = f"bitext-{i:05d}"
            yield Conversation(
                conversation_id=cid,
                channel="chat",
                created_at=_stable_ts(cid),
                turns=[Turn(role="customer", text=row["instruction"]), Turn(role="agent", text=row["response"])],
                metadata={"source": "bitext", "intent": row["intent"], "category": row["category"]},
            )


def twitter_conversations(json_path: str | Path) -> Iterator[Conversation]:
    """Twitter customer-care dialogues -> conversations (client = customer); company kept in metadata."""
    for dialog in json.loads(Path(json_path).read_text(encoding="utf-8")):
        header = dialog["dialogHeader"]
        turns = [
            Turn(
                role="customer" if "client" in msg else "agent",
                text=msg["message"],
                ts=datetime.fromisoformat(msg["datetime"].replace("Z", "+00:00")),
            )
            for msg in dialog["dialogContent"]
        ]
        url_turn = dialog.get("agentURL") or {}
        if url_turn.get("url_utterance"):
            turns.append(Turn(role="agent", text=url_turn["url_utterance"]))
        yield Conversation(
            conversation_id=f"twitter-{header['sessionID']}",
            channel="twitter",
            created_at=datetime.fromisoformat(header["conversationDateTime"].replace("Z", "+00:00")),
            turns=turns,
            metadata={"source": "twitter-customer-care", "company": header["company"]},
        )


def banking77_conversations(csv_path: str | Path) -> Iterator[Conversation]:
    """Banking77 queries -> one-turn conversations (no agent answer); intent in metadata."""
    with Path(csv_path).open(encoding="utf-8", newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            cid = f"banking77-{i:05d}"
            yield Conversation(
                conversation_id=cid,
                channel="app",
                created_at=_stable_ts(cid),
                turns=[Turn(role="customer", text=row["text"])],
                metadata={"source": "banking77", "intent": row["category"], "category": "BANKING"},
            )


def doc2dial_documents(corpus_path: str | Path) -> Iterator[Document]:
    """doc2dial pages -> knowledge-base documents (title = page title without the section suffix)."""
    with Path(corpus_path).open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            yield Document(doc_id=row["doc_id"], title=row["doc_id"].split("#")[0], text=row["text"])


def doc2dial_questions(questions_path: str | Path, *, first_turn_only: bool = True) -> Iterator[EvalQuestion]:
    """doc2dial user turns -> eval questions with their gold document and extractive gold answer."""
    with Path(questions_path).open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if first_turn_only and not row["is_first_turn"]:
                continue
            yield EvalQuestion(id=row["id"], query=row["query"], gold_doc_ids=[row["doc_id"]], answer=row["answer_text"])
