"""Stage `gateset`: the frozen held-out gate set (questions with reference answers) the promotion gate pairs on."""

from __future__ import annotations

import json

from llmops import workspace as ws
from llmops.evaluation.gateset import build_gateset
from llmops.jsonl import read_jsonl, write_json, write_jsonl
from llmops.records import EvalQuestion
from pipelines._stage import setup


def main() -> None:
    params, _ = setup("gateset")
    result = build_gateset(read_jsonl(params.evaluate.questions, EvalQuestion), params.gateset)
    write_jsonl(params.evaluate.gate_questions, result.questions)
    write_json(ws.stage_metrics("gateset"), result.stats())
    print(json.dumps(result.stats()))


if __name__ == "__main__":
    main()
