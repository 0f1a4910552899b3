"""BM25 side, fusion, retrieval evaluation and the index/eval CLI on a real Chroma and the real embedder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli import app
from llmops.config import IndexParams, Settings
from llmops.evaluation.retrievers import evaluate_corpus
from llmops.index.embed import LocalEmbedder
from llmops.index.hybrid import RetrievalHit, SparseIndex, collapse, open_retriever, rrf
from llmops.index.store import chroma_client
from llmops.records import Document, EvalQuestion

DOCS = [
    Document(doc_id="renew", title="Renewals", text="To renew a driver license, visit the DMV website and pay the fee."),
    Document(doc_id="benefits", title="Retirement", text="Social Security retirement benefits can start at age 62."),
    Document(doc_id="loans", title="Student aid", text="Federal student loans must be repaid; income-driven plans help."),
    Document(doc_id="plates", title="Plates", text="Form MV-82 registers a vehicle and issues licence plates."),
]
QUESTIONS = [
    EvalQuestion(id="q1", query="how do I renew my driving licence", gold_doc_ids=["renew"]),
    EvalQuestion(id="q2", query="at what age can I get retirement benefits", gold_doc_ids=["benefits"]),
    EvalQuestion(id="q3", query="MV-82", gold_doc_ids=["plates"]),
]


@pytest.mark.parametrize(
    ("rankings", "weights", "expected"),
    [
        ([["a", "b"], ["b", "a"]], [1.0, 1.0], {"a", "b"}),  # a tie: both on top
        ([["a", "b"], ["b", "a"]], [1.0, 0.5], ["a", "b"]),
        ([["a", "b"], ["b", "a"]], [0.5, 1.0], ["b", "a"]),
        ([["a"], ["c", "b"]], [1.0, 1.0], ["a", "c", "b"]),
    ],
)
def test_weighted_rrf(rankings: list[list[str]], weights: list[float], expected: object) -> None:
    fused = rrf(rankings, weights, k=10)
    assert (set(fused) if isinstance(expected, set) else fused) == expected


def test_collapse_keeps_each_document_at_its_best_rank() -> None:
    assert collapse(["a", "a", "b", "a", "c", "b"]) == ["a", "b", "c"]


def test_bm25_finds_exact_terms_and_stems() -> None:
    index = SparseIndex([d.text for d in DOCS])
    assert index.search(["MV-82 form"], k=2)[0][0] == 3
    assert index.search(["renewing licenses"], k=1)[0] == [0]  # stemmed: renewing -> renew
    assert index.search(["zzzz"], k=3)[0] == []  # no term matches: nothing returned


def test_evaluate_corpus_reports_each_retriever_and_reuses_the_index(tmp_path: Path, embedder: LocalEmbedder) -> None:
    client, cfg = chroma_client(Settings(home=tmp_path)), IndexParams()
    result = evaluate_corpus(DOCS, QUESTIONS, client, embedder, cfg)
    assert result["retriever"] == "hybrid" and result["recall@5"] == result["hybrid"]["recall@5"]
    for mode in ("dense", "bm25", "hybrid"):
        assert set(result[mode]) >= {"recall@1", "recall@5", "recall@10", "mrr", "ndcg@10"}
    assert result["bm25"]["recall@1"] >= 2 / 3 and result["hybrid"]["recall@1"] == 1.0
    assert result["index"]["embedded"] == 4
    again = evaluate_corpus(DOCS, QUESTIONS, client, embedder, cfg)
    assert again["index"]["embedded"] == 0 and again["hybrid"] == result["hybrid"]


def test_open_retriever_refuses_another_embedding_space(tmp_path: Path, embedder: LocalEmbedder) -> None:
    from llmops.errors import IndexStateError
    from llmops.index.refresh import refresh_index

    client, cfg = chroma_client(Settings(home=tmp_path)), IndexParams()
    with pytest.raises(IndexStateError, match="never published"):
        open_retriever(client, embedder, cfg)
    refresh_index(DOCS, client, embedder, cfg)
    hits = open_retriever(client, embedder, cfg).search(["student loan repayment"], k=2)[0]
    assert hits[0]["doc_id"] == "loans" and hits[0]["text"].startswith("Federal")
    # every hit is exactly a RetrievalHit (what evaluation, training prompts and the service read), JSON as it is
    assert all(set(h) == set(RetrievalHit.__annotations__) for h in hits) and [h["score"] for h in hits] == [1.0, 0.5]
    assert json.loads(json.dumps(hits)) == hits  # the retrieval cache stores hits as JSON and gets the same back

    class Other:
        embedder_id = "other:3"

    with pytest.raises(IndexStateError, match="refresh the index"):
        open_retriever(client, Other(), cfg)  # type: ignore[arg-type]


def _write(path: Path, rows: list) -> Path:
    path.write_text("".join(r.model_dump_json(exclude_none=True) + "\n" for r in rows), encoding="utf-8")
    return path


def test_cli_refresh_versions_rollback_and_eval(tmp_path: Path, settings_env: Path) -> None:
    runner, params = CliRunner(), str(Path(__file__).resolve().parents[2] / "params.yaml")
    docs = _write(tmp_path / "docs.jsonl", DOCS)
    res = runner.invoke(app, ["index", "refresh", "--docs", str(docs), "--collection", "kb-test", "--params", params])
    assert res.exit_code == 0, res.output
    first = json.loads(res.output[res.output.index("{") :])
    assert {k: first[k] for k in ("embedded", "unchanged", "deleted", "version")} == {
        "embedded": 4,
        "unchanged": 0,
        "deleted": 0,
        "version": "kb-test-v1",
    }
    assert "seconds" in first
    _write(docs, DOCS[:3])
    res = runner.invoke(app, ["index", "refresh", "--docs", str(docs), "--collection", "kb-test", "--params", params])
    second = json.loads(res.output[res.output.index("{") :])
    assert (second["embedded"], second["deleted"], second["version"]) == (0, 1, "kb-test-v2")

    res = runner.invoke(app, ["index", "rollback", "--collection", "kb-test", "--params", params])
    assert res.exit_code == 0 and json.loads(res.output)["serving"] == "kb-test-v1"
    res = runner.invoke(app, ["index", "rollback", "--collection", "kb-test", "--params", params])
    assert res.exit_code == 1 and "no earlier version" in res.output

    qs = _write(tmp_path / "q.jsonl", QUESTIONS)
    res = runner.invoke(app, ["eval", "retrieval", "--docs", str(docs), "--questions", str(qs), "--params", params])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{") :])
    assert {"recall@1", "recall@5", "recall@10", "mrr", "ndcg@10", "dense", "bm25"} <= set(out)

    (tmp_path / "bad.jsonl").write_text('{"id": "x", "query": "q"}\n')
    res = runner.invoke(app, ["eval", "retrieval", "--docs", str(docs), "--questions", str(tmp_path / "bad.jsonl")])
    assert res.exit_code == 1 and "bad.jsonl:1: gold_doc_ids" in res.output
