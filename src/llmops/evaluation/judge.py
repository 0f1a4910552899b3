"""LLM-as-judge: faithfulness (to the retrieved context) and relevance (to the question), 1-5, k repeats.

The judge is the configured chat model: an OpenAI(-compatible) model when keyed, the local SmolLM2
otherwise. Be honest about the local one: a 135M model is a weak judge (it often answers the same
grade whatever it reads, and greedy decoding makes its repeats identical), so its scores are a smoke
signal, not a verdict; unparseable replies are counted, never guessed.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence

from llmops.evaluation.base import EvalResult, EvalSample, mean_metrics
from llmops.llm.base import ChatModel

CRITERIA = {
    "faithfulness": "Is every statement of the ANSWER supported by the CONTEXT? 5 = fully supported, 1 = contradicts or invents.",
    "relevance": "Does the ANSWER address the QUESTION? 5 = directly and completely, 1 = unrelated.",
}
_GRADE = re.compile(r"\b([1-5])\b")


def judge_messages(criterion: str, sample: EvalSample, context_chars: int = 1200) -> list[dict[str, str]]:
    context = "\n".join(sample.contexts)[:context_chars]
    return [
        {"role": "system", "content": "You are a strict grader. Reply with one digit from 1 to 5 and nothing else."},
        {
            "role": "user",
            "content": f"{CRITERIA[criterion]}\n\nQUESTION: {sample.query}\n\nCONTEXT: {context}\n\n"
            f"ANSWER: {sample.answer}\n\nGrade (1-5):",
        },
    ]


def parse_grade(text: str) -> int | None:
    """The first digit 1-5 in the reply, or None when there is none."""
    match = _GRADE.search(text)
    return int(match.group(1)) if match else None


class JudgeEvaluator:
    """Mean judge grade per criterion, scaled to 0-1 ((grade-1)/4), over ``repeats`` calls (primary: faithfulness)."""

    name = "judge"

    def __init__(self, model: ChatModel, *, repeats: int = 1, max_questions: int | None = None, max_new_tokens: int = 4) -> None:
        if repeats < 1:
            raise ValueError("judge repeats must be >= 1")
        self.model, self.repeats, self.max_questions, self.max_new_tokens = model, repeats, max_questions, max_new_tokens

    def evaluate(self, samples: Sequence[EvalSample]) -> EvalResult:
        per_example: list[dict[str, float]] = []
        calls = unparsed = 0
        judged = 0
        for s in samples:
            if s.answer is None or (self.max_questions is not None and judged >= self.max_questions):
                per_example.append({})
                continue
            judged += 1
            row: dict[str, float] = {}
            for criterion in CRITERIA:
                grades = []
                for _ in range(self.repeats):
                    calls += 1
                    grade = parse_grade(self.model.chat(judge_messages(criterion, s), max_new_tokens=self.max_new_tokens).text)
                    if grade is None:
                        unparsed += 1
                    else:
                        grades.append(grade)
                if grades:
                    row[criterion] = round((statistics.fmean(grades) - 1) / 4, 4)
                    row[f"{criterion}_spread"] = float(max(grades) - min(grades))
            per_example.append(row)
        metrics = mean_metrics(per_example, [*CRITERIA, *(f"{c}_spread" for c in CRITERIA)])
        metrics.update({"judged": judged, "repeats": self.repeats, "unparsed_rate": round(unparsed / calls, 4) if calls else 0.0})
        return EvalResult(self.name, metrics, "faithfulness", per_example)
