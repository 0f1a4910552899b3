"""Where training questions and answers come from, and how an answer is made to fit the training window.

* :func:`conversation_pairs`: each customer turn (consecutive turns of one role merged) with the agent
  answer that follows it -- the single-turn shape the answer service is asked in;
* :func:`kb_pairs`: knowledge-base pages written as FAQs ("How do I apply?" followed by its paragraph);
* :func:`broken_placeholder` / :func:`broken_span`: template placeholders (``{{Order Number}}``) cut by
  redaction, and correction spans with a cut pseudonym or placeholder, are not trained on;
* :func:`fit_answer`: the whole example, chat template and end-of-turn token included, must fit
  ``max_seq_len``: a long answer is cut at a sentence boundary, or dropped when not even its first
  sentence fits. Training never sees an answer whose end-of-turn token was cut off, so the model keeps
  learning when to stop.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from llmops.records import ChatMessage, Conversation, Document, TrainingExample

CountTokens = Callable[[list[dict[str, Any]]], int]

_PLACEHOLDER = re.compile(r"\{\{[^{}\n]*\}\}")
_TAG = re.compile(r"<[A-Z][A-Z_]*_\d+>")  # a pseudonym: <PERSON_1>
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_PARAGRAPH = re.compile(r"\s*\n\s*\n\s*")


def conversation_pairs(conv: Conversation, limit: int = 0) -> list[tuple[str, str]]:
    """(question, answer) per agent reply to a customer turn, in order; ``limit`` > 0 keeps the first ones."""
    blocks: list[list[str]] = []  # [role, text] with consecutive turns of one role merged
    for turn in conv.turns:
        if blocks and blocks[-1][0] == turn.role:
            blocks[-1][1] += f"\n{turn.text}"
        else:
            blocks.append([turn.role, turn.text])
    pairs = [(q[1], a[1]) for q, a in itertools.pairwise(blocks) if q[0] == "customer" and a[0] == "agent"]
    return pairs[:limit] if limit > 0 else pairs


def kb_pairs(doc: Document) -> Iterator[tuple[int, str, str]]:
    """(position, question, answer) for each paragraph of ``doc`` that opens with a question line."""
    for i, paragraph in enumerate(_PARAGRAPH.split(doc.text)):
        lines = [line.strip() for line in paragraph.split("\n") if line.strip()]
        if len(lines) >= 2 and lines[0].endswith("?"):
            yield i, lines[0], " ".join(lines[1:])


def broken_placeholder(text: str) -> bool:
    """Does ``text`` hold a brace that is not part of a whole ``{{...}}`` placeholder (e.g. ``{<PERSON_1>}}``)?"""
    rest = _PLACEHOLDER.sub("", text)
    return "{" in rest or "}" in rest


def broken_span(text: str) -> bool:
    """A correction span cut badly: a broken placeholder, a cut pseudonym tag, or a replacement character."""
    if broken_placeholder(text) or "\ufffd" in text:
        return True
    rest = _TAG.sub("", text)
    return re.search(r"<[A-Z][A-Z_]*(_\d*)?(?![A-Za-z_\d>])", rest) is not None


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def fit_answer(
    prompt: Sequence[dict[str, str]], answer: str, count_tokens: CountTokens, max_seq_len: int
) -> tuple[str | None, str]:
    """The answer, whole or cut after its last sentence that fits, and what happened:
    ``fits`` | ``trimmed`` | ``prompt_over_max_seq_len`` | ``answer_over_max_seq_len`` (the last two: None)."""

    def total(text: str) -> int:
        return count_tokens([*prompt, {"role": "assistant", "content": text}])

    if total(answer) <= max_seq_len:
        return answer, "fits"
    if total("") >= max_seq_len:
        return None, "prompt_over_max_seq_len"
    parts = sentences(answer)
    lo, hi = 0, len(parts) - 1  # the largest k < len(parts) whose first k sentences fit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if total(" ".join(parts[:mid])) <= max_seq_len:
            lo = mid
        else:
            hi = mid - 1
    return (" ".join(parts[:lo]), "trimmed") if lo else (None, "answer_over_max_seq_len")


def read_chat_jsonl(path: str | Path) -> list[TrainingExample]:
    """Read an OpenAI-format chat JSONL (``{"messages": [...]}`` lines), as the trainset stage writes them."""
    out = []
    with Path(path).open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if line.strip():
                messages = [ChatMessage.model_validate(m) for m in json.loads(line)["messages"]]
                out.append(TrainingExample(messages=messages, source=str(path), group_id=str(i)))
    return out
