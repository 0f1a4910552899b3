"""One evaluation run: build samples from retrieval hits and generated answers, run every evaluator.

``metrics.json`` keeps the shape the gate reads (``retrieval.recall@5``, ``answers.token_f1``) and adds
one group per further evaluator, the primary metric of each, and per-slice primaries: an
:class:`~llmops.reports.evaluation.EvaluationReport`, with one :class:`~llmops.reports.evaluation.SampleRow` per
question.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llmops.config import EvaluateParams, Params, RedactParams, Settings
from llmops.evaluation.base import EvalResult, EvalSample, Evaluator, combine
from llmops.index.embed import Embedder
from llmops.index.hybrid import RetrievalHit
from llmops.llm.base import ChatModel
from llmops.records import EvalQuestion
from llmops.reports.evaluation import EvaluationReport, SampleRow, sample_rows

if TYPE_CHECKING:
    from llmops.evaluation.rag import AnsweredQuestion


def domain_of(doc_id: str) -> str:
    """'Borrower Defense | Federal Student Aid#1_0' -> 'Federal Student Aid' (the site of a doc2dial page)."""
    head = doc_id.split("#", 1)[0]
    return head.rsplit("|", 1)[1].strip() if "|" in head else "unknown"


def build_samples(
    questions: Sequence[EvalQuestion],
    hits: Sequence[Sequence[RetrievalHit]],
    answered: Sequence[AnsweredQuestion],
    *,
    contexts_per_answer: int = 3,
) -> list[EvalSample]:
    """Every question gets its ranking; the answered subset also gets its answer and the contexts it saw."""
    by_id = {a["id"]: a for a in answered}
    samples = []
    for q, h in zip(questions, hits, strict=True):
        a = by_id.get(q.id)
        samples.append(
            EvalSample(
                id=q.id,
                query=q.query,
                answer=a["answer"] if a else None,
                reference=q.answer if a else None,
                contexts=[x["text"] for x in h[:contexts_per_answer]] if a else [],
                retrieved_doc_ids=[x["doc_id"] for x in h],
                gold_doc_ids=list(q.gold_doc_ids),
                slices={"domain": domain_of(q.gold_doc_ids[0])},
            )
        )
    return samples


def run_evaluators(
    evaluators: Sequence[Evaluator],
    samples: Sequence[EvalSample],
    *,
    model_id: str | None = None,
    figures: Mapping[str, Mapping[str, float]] | None = None,
) -> tuple[EvaluationReport, list[SampleRow], list[EvalResult]]:
    """The ``metrics.json`` report, per-sample rows (for reports/evaluate/samples.jsonl) and the raw results.
    ``figures``: computed outside the evaluators (answer latency, truncation), merged into their group; an
    evaluator's own value of the same name wins."""
    results = [e.evaluate(samples) for e in evaluators]
    metrics, rows = combine(samples, results)
    for group, values in (figures or {}).items():
        own = metrics.setdefault(group, {})
        own.update({k: v for k, v in values.items() if k not in own})
    head: dict[str, Any] = {"model_id": model_id} if model_id is not None else {}
    return EvaluationReport.model_validate(head | metrics), sample_rows(rows), results


def judge_model(cfg: EvaluateParams, settings: Settings, local_model: ChatModel | None) -> ChatModel:
    """The configured chat model as judge: OpenAI(-compatible) when keyed, else the local model."""
    if settings.openai_api_key is not None:
        from llmops.llm.openai_chat import OpenAIChatModel

        return OpenAIChatModel.from_settings(cfg.judge_model, settings)
    if local_model is None:
        from llmops.llm.local import LocalChatModel

        local_model = LocalChatModel(settings.base_model_cache)
    return local_model


def default_evaluators(
    cfg: EvaluateParams,
    settings: Settings,
    embedder: Embedder,
    *,
    local_model: ChatModel | None = None,
    redact: RedactParams | None = None,
) -> list[Evaluator]:
    """Retrieval, reference answers, heuristics, groundedness and (when ``judge_questions`` > 0) the judge."""
    from llmops.evaluation.answers import ReferenceEvaluator
    from llmops.evaluation.groundedness import GroundednessEvaluator
    from llmops.evaluation.heuristics import HeuristicsEvaluator
    from llmops.evaluation.judge import JudgeEvaluator
    from llmops.evaluation.retrieval import RetrievalEvaluator
    from llmops.pii.scan import Scanner

    evaluators: list[Evaluator] = [
        RetrievalEvaluator(cfg.k),
        ReferenceEvaluator(embedder),  # + answer-reference semantic similarity
        HeuristicsEvaluator(Scanner(redact) if redact is not None else None),  # the project's leak-scan settings
        GroundednessEvaluator(embedder, threshold=cfg.groundedness_threshold),
    ]
    if cfg.judge_questions > 0:
        model = judge_model(cfg, settings, local_model)
        evaluators.append(JudgeEvaluator(model, repeats=cfg.judge_repeats, max_questions=cfg.judge_questions))
    return evaluators


def evaluate_model(
    questions: Sequence[EvalQuestion],
    retriever: Any,
    model: ChatModel,
    embedder: Embedder,
    params: Params,
    settings: Settings,
    *,
    progress: bool = False,
) -> tuple[EvaluationReport, list[SampleRow]]:
    """Retrieve and answer every frozen eval question, then run every evaluator: the ``metrics.json``
    report (with ``model_id``; answer latency and refusals added to ``answers``) and the per-sample rows."""
    from llmops.evaluation.rag import evaluate_answers, evaluate_retrieval

    top_k = params.serve.top_k  # answers see the context the answer service gives: one source of truth
    _, hits = evaluate_retrieval(questions, retriever, params.evaluate.k, depth=top_k)  # the retrieval evaluator scores hits
    answers, answered = evaluate_answers(questions, hits, model, params.evaluate, params.base, top_k=top_k, progress=progress)
    evaluators = default_evaluators(params.evaluate, settings, embedder, local_model=model, redact=params.redact)
    samples = build_samples(questions, hits, answered, contexts_per_answer=top_k)
    report, rows, _ = run_evaluators(evaluators, samples, model_id=model.model_id, figures={"answers": answers})
    return report, rows
