"""Retrieval + answering over the index, as the evaluate stage (and later the answer service) uses it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmops.config import BaseParams, EvaluateParams
from llmops.evaluation.answers import answer_metrics
from llmops.evaluation.retrieval import retrieval_metrics
from llmops.index.hybrid import HybridRetriever
from llmops.llm.base import ChatModel
from llmops.llm.prompts import rag_messages
from llmops.records import EvalQuestion


def evaluate_retrieval(
    questions: Sequence[EvalQuestion], retriever: HybridRetriever, ks: Sequence[int]
) -> tuple[dict[str, float], list[list[dict[str, Any]]]]:
    """Retrieval metrics of the configured retriever; also returns the hits for answer generation."""
    hits = retriever.search([q.query for q in questions], k=max(ks)) if questions else []
    ranked = [[h["doc_id"] for h in hs] for hs in hits]
    return retrieval_metrics(ranked, [q.gold_doc_ids for q in questions], ks), hits


def evaluate_answers(
    questions: Sequence[EvalQuestion],
    hits: Sequence[Sequence[dict[str, Any]]],
    model: ChatModel,
    cfg: EvaluateParams,
    base: BaseParams,
    *,
    progress: bool = False,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Generate RAG answers for the first ``cfg.answer_questions`` questions and score them."""
    items = [(q, h) for q, h in zip(questions, hits, strict=True) if q.answer][: cfg.answer_questions]
    iterator: Any = items
    if progress:
        from tqdm import tqdm

        iterator = tqdm(items, desc="answers", unit="q")
    samples = []
    for q, h in iterator:
        messages = rag_messages(q.query, [x["text"] for x in h[:3]], base.system_prompt, cfg.context_chars)
        res = model.chat(messages, max_new_tokens=cfg.max_new_tokens)
        samples.append(
            {"id": q.id, "query": q.query, "answer": res.text, "reference": q.answer, "latency_ms": round(res.latency_ms, 1)}
        )
    metrics = answer_metrics([s["answer"] for s in samples], [s["reference"] for s in samples])
    if samples:
        metrics["latency_ms_mean"] = round(sum(s["latency_ms"] for s in samples) / len(samples), 1)
    return metrics, samples
