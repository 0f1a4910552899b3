"""Retrieval + answering over the index, as the evaluate stage (and later the answer service) uses it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypedDict

from llmops.config import BaseParams, EvaluateParams
from llmops.evaluation.answers import answer_metrics
from llmops.evaluation.retrieval import retrieval_metrics
from llmops.index.hybrid import HybridRetriever, RetrievalHit
from llmops.llm.base import ChatModel, chat_many
from llmops.llm.prompts import rag_messages
from llmops.records import EvalQuestion


class AnsweredQuestion(TypedDict):
    """One generated answer, as :func:`evaluate_answers` hands it to the evaluators' samples."""

    id: str
    query: str
    answer: str
    reference: str  # only questions with a reference answer are answered
    latency_ms: float


def evaluate_retrieval(
    questions: Sequence[EvalQuestion], retriever: HybridRetriever, ks: Sequence[int], *, depth: int = 0
) -> tuple[dict[str, float | None], list[list[RetrievalHit]]]:
    """Retrieval metrics of the configured retriever (rankings cut at ``max(ks)``); also returns the hits
    for answer generation, at least ``depth`` deep (the serving ``serve.top_k``)."""
    hits = retriever.search([q.query for q in questions], k=max(*ks, depth)) if questions else []
    ranked = [[h["doc_id"] for h in hs[: max(ks)]] for hs in hits]
    return retrieval_metrics(ranked, [q.gold_doc_ids for q in questions], ks), hits


def evaluate_answers(
    questions: Sequence[EvalQuestion],
    hits: Sequence[Sequence[RetrievalHit]],
    model: ChatModel,
    cfg: EvaluateParams,
    base: BaseParams,
    *,
    top_k: int,
    progress: bool = False,
) -> tuple[dict[str, float], list[AnsweredQuestion]]:
    """Generate RAG answers (batched, greedy) for the questions with a reference answer -- the first
    ``cfg.answer_questions`` of them, 0 = all -- and score them. Each prompt carries the first ``top_k``
    hits, as the answer service builds it (pass ``serve.top_k``). ``truncated_rate`` is the share of answers
    cut at ``max_new_tokens`` (raise it when high: a cut answer is scored as if complete)."""
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1 (serve.top_k), got {top_k}")
    items = [(q, h) for q, h in zip(questions, hits, strict=True) if q.answer]
    if cfg.answer_questions:
        items = items[: cfg.answer_questions]
    conversations = [
        rag_messages(q.query, [x["text"] for x in h[:top_k]], base.system_prompt, cfg.context_chars) for q, h in items
    ]
    results = []
    step = max(cfg.batch_size, 1) * 4  # progress in chunks of a few batches
    chunks: Iterable[int] = range(0, len(conversations), step)
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc=f"answers ({len(conversations)} questions)", unit="chunk")
    for lo in chunks:
        results += chat_many(model, conversations[lo : lo + step], max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)
    samples = [
        AnsweredQuestion(id=q.id, query=q.query, answer=r.text, reference=q.answer or "", latency_ms=round(r.latency_ms, 1))
        for (q, _), r in zip(items, results, strict=True)
    ]
    metrics = answer_metrics([s["answer"] for s in samples], [s["reference"] for s in samples])
    if samples:
        metrics["latency_ms_mean"] = round(sum(s["latency_ms"] for s in samples) / len(samples), 1)
        metrics["truncated_rate"] = round(sum(r.truncated for r in results) / len(results), 4)
        metrics["completion_tokens_mean"] = round(sum(r.completion_tokens for r in results) / len(results), 1)
    return metrics, samples
