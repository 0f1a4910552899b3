"""metrics.json, samples.jsonl and the gate decision: one writer each, read back through the same model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops.errors import DataContractError
from llmops.evaluation.answers import ReferenceEvaluator
from llmops.evaluation.base import combine
from llmops.evaluation.gate import decide, load_scores
from llmops.evaluation.retrieval import RetrievalEvaluator
from llmops.evaluation.suite import build_samples, run_evaluators
from llmops.jsonl import write_json, write_jsonl
from llmops.records import EvalQuestion
from llmops.reports.evaluation import (
    EvaluationReport,
    GateDecision,
    SampleRow,
    read_evaluation_report,
    read_samples,
    sample_rows,
    write_samples,
)


def _inputs() -> tuple[list[EvalQuestion], list[list[dict[str, str]]], list[dict[str, str]]]:
    qs = [
        EvalQuestion(id="a", query="q1 é", gold_doc_ids=["P | Site A#0"], answer="x y"),
        EvalQuestion(id="b", query="q2", gold_doc_ids=["Q | Site B#0"], answer="y"),
    ]
    hits = [[{"doc_id": "P | Site A#0", "text": "t"}], [{"doc_id": "Z#0", "text": "u"}, {"doc_id": "Q | Site B#0", "text": "v"}]]
    return qs, hits, [{"id": "a", "answer": "x"}]


def _evaluated() -> tuple[dict[str, object], list[dict[str, object]]]:
    """A real evaluation of two questions (one answered): the metrics body and rows the evaluators produce."""
    samples = build_samples(*_inputs())  # type: ignore[arg-type]
    metrics, rows = combine(samples, [e.evaluate(samples) for e in (RetrievalEvaluator([1, 5]), ReferenceEvaluator())])
    return {"model_id": "m", **metrics}, rows


def test_reports_round_trip_and_keep_the_bytes_of_the_plain_writers(tmp_path: Path) -> None:
    body, rows = _evaluated()
    report, typed = EvaluationReport.model_validate(body), sample_rows(rows)
    report.write(tmp_path / "metrics.json")
    write_samples(tmp_path / "samples.jsonl", typed)
    # the files as the stage wrote them before the models: the same bytes
    write_json(tmp_path / "plain-metrics.json", body)
    write_jsonl(tmp_path / "plain-samples.jsonl", rows)
    assert (tmp_path / "metrics.json").read_bytes() == (tmp_path / "plain-metrics.json").read_bytes()
    assert (tmp_path / "samples.jsonl").read_bytes() == (tmp_path / "plain-samples.jsonl").read_bytes()
    assert list(report.as_dict()) == list(body)  # what the registry stores keeps its order too
    evaluators = [RetrievalEvaluator([1, 5]), ReferenceEvaluator()]
    samples = build_samples(*_inputs())
    assert run_evaluators(evaluators, samples, model_id="m")[:2] == (report, typed)  # the suite's typed hand-off
    back = read_evaluation_report(tmp_path / "metrics.json")
    assert back == report and back.metric("retrieval.recall@1") == 0.5 and back.metric("answers.nothing") is None
    assert isinstance(back.groups["answers"]["answers"], int)  # a count stays a count
    assert read_samples(tmp_path / "samples.jsonl") == typed
    assert typed[1].answer is None and typed[1].scores("answers.token_f1") is None and typed[1].scores("domain") is None
    assert load_scores(tmp_path / "samples.jsonl", "answers.token_f1") == {"a": [0.6667]}


def test_a_malformed_metrics_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"model_id": "m", "answers": {"token_f1": "high"}}))
    with pytest.raises(DataContractError, match=r"metrics\.json is not a valid evaluation report \(answers\.token_f1"):
        EvaluationReport.read(path)
    with pytest.raises(DataContractError, match=r"metrics\.json does not exist: the evaluate stage writes it"):
        EvaluationReport.read(tmp_path / "nothing" / "metrics.json")


def test_a_malformed_sample_row_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    good = SampleRow.model_validate({"id": "q1", "query": "?", "answer": "a", "answers.token_f1": 0.5})
    path.write_text(json.dumps(good.as_dict()) + "\n\n" + json.dumps({"query": "no id"}) + "\n")
    with pytest.raises(DataContractError, match=r"samples\.jsonl:3 is not a valid evaluation sample row \(id: Field required"):
        read_samples(path)
    path.write_text(json.dumps({"id": "q1", "answers.token_f1": {"nested": 1}}) + "\n")
    with pytest.raises(DataContractError, match=r"samples\.jsonl:1 .*answers\.token_f1"):
        load_scores(path, "answers.token_f1")


def test_gate_decision_serialises_and_reads_back() -> None:
    champion = {"answers": {"token_f1": 0.3}}
    decision = decide({"answers": {"token_f1": 0.1}}, champion)
    assert isinstance(decision, GateDecision) and not decision.promote
    decision.evidence["champion_id"] = "base"  # how the promotion step adds to it
    decision.reasons.append("waiting")
    body = decision.as_dict()
    assert list(body) == ["promote", "reasons", "evidence"] and body["evidence"]["champion_id"] == "base"
    assert GateDecision.from_json(json.dumps(body)) == decision
    assert GateDecision(True).as_dict() == {"promote": True, "reasons": [], "evidence": {}}
    with pytest.raises(DataContractError, match="run summary is not a valid gate decision"):
        GateDecision.from_json('{"reasons": []}', source="run summary")
