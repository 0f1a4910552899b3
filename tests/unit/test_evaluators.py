"""Each evaluator on tiny hand-checked cases, the combined metrics.json shape and per-slice results."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest

from llmops.evaluation.answers import ReferenceEvaluator, bleu, rouge_l
from llmops.evaluation.base import EvalSample
from llmops.evaluation.heuristics import HeuristicsEvaluator, cites_document, residual_pii
from llmops.evaluation.judge import JudgeEvaluator, parse_grade
from llmops.evaluation.retrieval import RetrievalEvaluator
from llmops.evaluation.suite import build_samples, domain_of, run_evaluators
from llmops.records import EvalQuestion


@pytest.mark.parametrize(
    ("pred", "ref", "expected"),
    [
        ("the cat sat on mat", "cat on the mat", 2 * 0.75 * 1.0 / 1.75),  # LCS cat-on-mat = 3 of 4 / 3
        ("x y z", "z y x", 1 / 3),  # LCS 1
        ("dog", "cat", 0.0),
    ],
)
def test_rouge_l(pred: str, ref: str, expected: float) -> None:
    assert rouge_l(pred, ref) == pytest.approx(expected)


def test_bleu_identical_short_and_disjoint() -> None:
    assert bleu("renew your license online today", "renew your license online today") == pytest.approx(1.0)
    # one matching unigram, smoothed higher orders are 1/1, brevity penalty exp(1 - 4/1)
    assert bleu("cat", "cat sat on mat") == pytest.approx(math.exp(-3))
    assert bleu("dog", "cat sat") == 0.0


def test_reference_evaluator_skips_unanswered() -> None:
    samples = [EvalSample("1", "q", answer="renew online", reference="renew online"), EvalSample("2", "q")]
    r = ReferenceEvaluator().evaluate(samples)
    assert r.metrics == {"token_f1": 1.0, "rouge_l": 1.0, "bleu": 1.0, "answers": 1}
    assert r.primary == "token_f1" and r.per_example[1] == {}


def test_heuristics() -> None:
    texts = ["mail jane.doe@example.com or call 555-123-4567", "your order <PHONE_NUMBER_1> is on its way"]
    assert residual_pii(texts) == [["EMAIL_ADDRESS", "PHONE_NUMBER"], []]  # the leak scan's detectors
    assert cites_document("See Borrower Defense to Repayment for details.", ["Borrower Defense to Repayment | FSA#1_0"])
    assert cites_document("As stated in [1], yes.", [])
    assert not cites_document("Yes you can.", ["Borrower Defense to Repayment | FSA#1_0"])
    samples = [
        EvalSample("1", "q", answer="I'm sorry, I don't know."),
        EvalSample("2", "q", answer="Call 555-123-4567 [1]"),
        EvalSample("3", "q", answer=""),
        EvalSample("4", "q"),  # not answered: not counted
    ]
    m = HeuristicsEvaluator().evaluate(samples).metrics
    assert m["refusal_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["residual_pii_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["cites_document_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["empty_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["answers"] == 3 and m["answer_words"] == pytest.approx((5 + 3 + 0) / 3, abs=0.01)


def test_retrieval_evaluator_per_example_and_slices() -> None:
    qs = [
        EvalQuestion(id="a", query="q1", gold_doc_ids=["P | Site A#0"], answer="x"),
        EvalQuestion(id="b", query="q2", gold_doc_ids=["Q | Site B#0"], answer="y"),
    ]
    hits = [[{"doc_id": "P | Site A#0", "text": "t"}], [{"doc_id": "Z#0", "text": "u"}, {"doc_id": "Q | Site B#0", "text": "v"}]]
    samples = build_samples(qs, hits, [{"id": "a", "answer": "x"}])
    assert samples[1].answer is None and samples[0].contexts == ["t"]
    metrics, rows, results = run_evaluators([RetrievalEvaluator([1, 5]), ReferenceEvaluator()], samples)
    assert metrics.metric("retrieval.recall@1") == 0.5 and metrics.metric("retrieval.mrr") == pytest.approx(0.75)
    assert metrics.metric("answers.token_f1") == 1.0 and metrics.groups["answers"]["answers"] == 1
    assert metrics.primary == {"retrieval": "recall@5", "answers": "token_f1"}
    assert metrics.slices["domain"]["Site B"] == {"n": 1, "retrieval.recall@5": 1.0}
    assert metrics.slices["domain"]["Site A"]["answers.token_f1"] == 1.0
    assert rows[1].columns["retrieval.mrr"] == 0.5 and "answers.token_f1" not in rows[1].columns
    assert rows[1].answer is None and rows[0].columns["domain"] == "Site A"
    assert domain_of("no site#1") == "unknown" and results[0].primary_value == 1.0


def test_groundedness_with_the_real_embedder() -> None:
    from llmops.evaluation.groundedness import GroundednessEvaluator
    from llmops.index.embed import LocalEmbedder

    ctx = ["You can renew your driver's license online at the DMV website. Renewal costs 30 dollars."]
    samples = [
        EvalSample("1", "q", answer="You can renew your driver's license online on the DMV website.", contexts=ctx),
        EvalSample("2", "q", answer="The moon orbits the earth every month. Bananas are yellow fruit.", contexts=ctx),
        EvalSample("3", "q", answer="Renewal costs 30 dollars. Penguins live in Antarctica and eat fish.", contexts=ctx),
    ]
    r = GroundednessEvaluator(LocalEmbedder(), threshold=0.6).evaluate(samples)
    g = [e["groundedness"] for e in r.per_example]
    assert g[0] == 1.0 and g[1] == 0.0
    assert g[2] == pytest.approx(4 / 11, abs=1e-3)  # 4 supported words of 4 + 7


class _JudgeServer(BaseHTTPRequestHandler):
    replies: ClassVar[list[str]] = []
    calls: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append(body)
        text = type(self).replies[(len(type(self).calls) - 1) % len(type(self).replies)]
        payload = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def judge_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _JudgeServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_judge_repeats_through_an_openai_compatible_endpoint(judge_url: str) -> None:
    from llmops.llm.openai_chat import OpenAIChatModel

    assert parse_grade("Grade: 4/5") == 4 and parse_grade("no idea") is None and parse_grade("10") is None
    # per sample: faithfulness x3 then relevance x3
    _JudgeServer.replies, _JudgeServer.calls = ["5", "Grade: 3", "hmm", "1", "1", "1"], []
    model = OpenAIChatModel("judge-model", api_key="test", base_url=judge_url)
    samples = [EvalSample("1", "how to renew?", answer="online", contexts=["renew online"]), EvalSample("2", "q")]
    r = JudgeEvaluator(model, repeats=3).evaluate(samples)
    assert len(_JudgeServer.calls) == 6 and _JudgeServer.calls[0]["model"] == "judge-model"
    assert "renew online" in _JudgeServer.calls[0]["messages"][1]["content"]
    assert r.per_example[0]["faithfulness"] == pytest.approx(0.75)  # grades 5, 3 -> 4 -> (4-1)/4
    assert r.per_example[0]["faithfulness_spread"] == 2.0
    assert r.per_example[0]["relevance"] == 0.0
    assert r.metrics["unparsed_rate"] == pytest.approx(1 / 6, abs=1e-4)
    assert r.metrics["judged"] == 1 and r.primary == "faithfulness"


def test_semantic_similarity_is_the_primary_with_an_embedder(embedder: object) -> None:
    ref = "You can renew your driver's license online at the DMV website."
    samples = [
        EvalSample("1", "q", answer="Renew the license online on the DMV's website.", reference=ref),
        EvalSample("2", "q", answer="Bananas are a yellow fruit rich in potassium.", reference=ref),
        EvalSample("3", "q", answer="", reference=ref),
        EvalSample("4", "q"),  # not answered: skipped, not scored 0
    ]
    r = ReferenceEvaluator(embedder).evaluate(samples)  # type: ignore[arg-type]
    sims = [e.get("semantic_similarity") for e in r.per_example]
    assert r.primary == "semantic_similarity" and sims[0] > 0.7 > 0.3 > sims[1] and sims[2] == 0.0 and sims[3] is None
    assert r.metrics["semantic_similarity"] == pytest.approx(sum(sims[:3]) / 3, abs=1e-3) and r.metrics["answers"] == 3


class _MumblingJudge:
    """A judge model that never answers with a grade (what the 135M local judge does)."""

    model_id = "mumbler"

    def chat(self, messages: list[dict[str, str]], *, max_new_tokens: int = 128) -> object:
        from llmops.llm.base import ChatResult

        return ChatResult(text="The answer seems fine overall.", prompt_tokens=1, completion_tokens=5, latency_ms=1.0)


def test_metrics_a_run_could_not_compute_are_missing_not_zero() -> None:
    samples = [EvalSample("1", "q", answer="a", reference="a", contexts=["c"])]
    metrics, _, results = run_evaluators([ReferenceEvaluator(), JudgeEvaluator(_MumblingJudge())], samples)
    assert "faithfulness" not in metrics.groups["judge"] and metrics.metric("judge.unparsed_rate") == 1.0
    assert {"judge.faithfulness", "judge.relevance"} <= set(metrics.missing) and results[1].primary_value is None
    assert "answers.token_f1" not in metrics.missing and metrics.metric("answers.token_f1") == 1.0


def test_batched_greedy_answers_equal_one_by_one(model_cache: object) -> None:
    """Left padding and sorting by length must not change what greedy decoding says."""
    from pathlib import Path

    from llmops.llm.local import LocalChatModel

    model = LocalChatModel(Path(str(model_cache)) / "base")
    prompts = [
        [{"role": "user", "content": "How do I reset my password?"}],
        [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Where is my refund? I paid a week ago."}],
        [{"role": "user", "content": "Hi"}],
    ]
    batched = model.chat_batch(prompts, max_new_tokens=12, batch_size=3)
    single = [model.chat(p, max_new_tokens=12) for p in prompts]
    assert [b.text for b in batched] == [s.text for s in single] and all(b.text for b in batched)
    assert [b.prompt_tokens for b in batched] == [s.prompt_tokens for s in single]
    templated = [
        model.tokenizer.apply_chat_template(p, add_generation_prompt=True, return_dict=True)["input_ids"] for p in prompts
    ]
    assert [b.prompt_tokens for b in batched] == [len(ids) for ids in templated]  # the chat template, tokenized once
    assert any(b.truncated for b in batched) and all(b.completion_tokens <= 12 for b in batched)
