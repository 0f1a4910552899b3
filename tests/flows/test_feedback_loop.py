"""The loop the product exists for: serve answers, collect feedback, run the nightly flow, and find the
corrected examples (with provenance) in the next training set — without eval questions or PII."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from llmops import workspace as ws
from llmops.config import Settings, load_params
from llmops.jsonl import read_jsonl
from llmops.records import EvalQuestion, FeedbackEvent
from llmops.serve.app import build_answerer, create_app
from llmops.serve.auth import KeyRing, parse_key
from llmops.serve.simulate import simulate

CANARY_CARD = "4111 1111 1111 1111"
CANARY_EMAIL = "jane.roe@example.com"
REVIEWER = "reviewer-secret-0123456789"


def test_served_feedback_reaches_the_next_training_set(workspace: Path, prefect_api: None) -> None:
    from flows.nightly import nightly

    assert nightly(project_dir=str(workspace), return_state=True).is_completed()

    params = load_params(workspace / "params.yaml")
    evals = read_jsonl(workspace / params.evaluate.questions, EvalQuestion)
    # Real questions that are not in the eval set: the sample's feedback queries with their gold answers.
    seed = read_jsonl(workspace / "data/sample/feedback.jsonl", FeedbackEvent)
    fresh = [
        EvalQuestion(id=e.generation_id, query=e.query, gold_doc_ids=["-"], answer=e.correction or e.answer) for e in seed[:6]
    ]
    keys = KeyRing([parse_key(f"support@reviewer:{REVIEWER}", "test")])
    bearer = {"Authorization": f"Bearer {REVIEWER}"}
    with TestClient(create_app(build_answerer(Settings(), params, workspace), keys=keys)) as client:
        counts = simulate(fresh, "", 6, client=client, api_key=REVIEWER)
        assert counts["answers"] == 6
        corrected = []
        for query, correction in [
            (
                "My card " + CANARY_CARD + " was charged twice for one order, what now?",
                "We refund double charges within 5 days; write to " + CANARY_EMAIL + " if not.",
            ),
            (evals[0].query, evals[0].answer or "gold"),  # an eval question: must never reach training
        ]:
            gid = client.post("/answer", json={"query": query}, headers=bearer).json()["generation_id"]
            fb = {"generation_id": gid, "rating": -1, "correction": correction}
            assert client.post("/feedback", json=fb, headers=bearer).status_code == 202
            corrected.append(gid)

    summary = nightly(project_dir=str(workspace))
    ran = [s["stage"] for s in summary["stages"] if s["ran"]]
    assert ran[:1] == ["feedback"] and {"trainset", "finetune", "evaluate"} <= set(ran)

    provenance = [json.loads(x) for x in (workspace / ws.TRAINSET / "provenance.jsonl").read_text().splitlines()]
    from_corrections = {p["group_id"] for p in provenance if p["source"] == "correction"}
    assert corrected[0] in from_corrections, "the corrected answer is a training example, traceable to its generation"
    assert corrected[1] not in {p["group_id"] for p in provenance}, "eval question excluded"
    training = (workspace / ws.TRAINSET / "train.jsonl").read_text() + (workspace / ws.TRAINSET / "validation.jsonl").read_text()
    assert evals[0].query not in training
    assert CANARY_CARD not in training and CANARY_EMAIL not in training
    from llmops.pii.scan import Scanner, path_texts

    assert Scanner(params.redact).scan(path_texts(workspace / ws.TRAINSET)) == [], "leak scan of the next training set"
    stats = json.loads((workspace / "metrics/feedback.json").read_text())
    assert stats["new_from_log"]["generations"] == 8 and stats["dropped"].get("eval_overlap", 0) >= 1
