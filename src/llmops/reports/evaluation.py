"""What the evaluate stage hands to the gate, the registry and the run summary.

* :class:`EvaluationReport`: the body of ``metrics.json`` (one group of figures per evaluator, the primary
  metric of each, what could not be computed, per-slice primaries, the evaluated model's id);
* :class:`SampleRow`: one line of ``reports/evaluate/samples.jsonl`` (the question, its answer and one
  ``group.metric`` column per per-question score, which the gate pairs by question id);
* :class:`GateDecision`: the promotion gate's verdict, as the registry and the run summary record it.

Each file has one writer here (:meth:`EvaluationReport.write`, :func:`write_samples`) and is read back through
the same model (:meth:`EvaluationReport.read`, :func:`read_samples`); the JSON keeps the shape it always had.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmops.errors import DataContractError
from llmops.jsonl import write_json, write_jsonl
from llmops.reports.base import HandOff, contract_error

Metric = int | float  # an int stays an int on disk (counts), a float a float
_MISSING = "the evaluate stage writes it (dvc repro evaluate)"
_FIX = "rerun the evaluate stage that writes it"
Cell = str | int | float | list[int | float] | None  # a sample row's slice value or per-question score


class EvaluationReport(HandOff):
    """``metrics.json``: ``{"model_id", "primary", "missing", "slices", <group>: {metric: value}}`` with one
    group per evaluator (``retrieval``, ``answers``, ``heuristics``, ``groundedness``, ``judge``)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, dict[str, Metric]] = Field(init=False)  # the evaluator groups

    model_id: str | None = None  # the evaluate stage always sets it; a stand-in file may not
    primary: dict[str, str] = Field(default_factory=dict)  # group -> its primary metric
    missing: list[str] = Field(default_factory=list)  # group.metric no sample could be scored on
    slices: dict[str, dict[str, dict[str, Metric]]] = Field(default_factory=dict)  # {"domain": {"ssa": {...}}}

    @property
    def groups(self) -> dict[str, dict[str, Metric]]:
        """The evaluator groups, by name."""
        return dict(self.__pydantic_extra__ or {})

    def metric(self, dotted: str) -> float | None:
        """``report.metric("answers.token_f1")``; None when absent."""
        group, _, name = dotted.partition(".")
        value = self.groups.get(group, {}).get(name)
        return float(value) if value is not None else None

    def as_dict(self) -> dict[str, Any]:
        """The JSON body (what the registry stores as the model's evaluation): the keys that were set, in the
        order the evaluation builds them (``model_id``, the groups, ``primary``, ``missing``, ``slices``)."""
        body = self.model_dump(mode="json", exclude_unset=True)
        tail = [k for k in ("primary", "missing", "slices") if k in body]
        return {k: body[k] for k in body if k not in tail} | {k: body[k] for k in tail}

    def write(self, path: Path) -> None:
        """Write ``metrics.json`` (the one writer of that file; keys sorted, as DVC metrics diff them)."""
        write_json(path, self.as_dict())

    @classmethod
    def read(cls, path: Path) -> EvaluationReport:
        """Read a ``metrics.json``; a missing or malformed file is a :class:`DataContractError` naming it."""
        return cls.load(path, what="evaluation report", missing=_MISSING, fix=_FIX, whole="the record")


def read_evaluation_report(path: Path) -> EvaluationReport:
    """The evaluate stage's ``metrics.json`` (see :meth:`EvaluationReport.read`)."""
    return EvaluationReport.read(path)


class SampleRow(BaseModel):
    """One evaluated question: ``{"id", "query", "answer", "reference", <slice>: value, <group.metric>: score}``.
    ``answer`` is None for a question that was only retrieved for (no reference answer, or over the cap)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Cell] = Field(init=False)  # slices and per-question scores, in written order

    id: str
    query: str | None = None  # the evaluate stage always writes it; the gate needs only id and the score column
    answer: str | None = None
    reference: str | None = None

    @property
    def columns(self) -> dict[str, Cell]:
        """Slice values and per-question scores, by column name."""
        return dict(self.__pydantic_extra__ or {})

    def scores(self, column: str) -> list[float] | None:
        """The per-question score(s) in ``column`` (a list holds k repeats); None when the row has none."""
        value = self.columns.get(column)
        if value is None or isinstance(value, str):
            return None
        return [float(value)] if isinstance(value, int | float) else [float(v) for v in value]

    def as_dict(self) -> dict[str, Any]:
        """The JSON line's body: the keys that were set, in written order (None kept: an unanswered question
        says so)."""
        return self.model_dump(exclude_unset=True)


def write_samples(path: Path, rows: Iterable[SampleRow]) -> int:
    """Write ``reports/evaluate/samples.jsonl`` (the one writer of that file); returns the number of rows."""
    return write_jsonl(path, (row.as_dict() for row in rows))


def read_samples(path: Path) -> list[SampleRow]:
    """The rows of a samples JSONL file; a malformed line is a :class:`DataContractError` naming file and line."""
    rows = []
    try:
        fh = path.open(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DataContractError(f"{path} does not exist: {_MISSING}") from exc
    with fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rows.append(SampleRow.model_validate_json(line))
            except ValidationError as exc:
                raise contract_error(path, "evaluation sample row", exc, fix=_FIX, line=line_no, whole="the record") from exc
    return rows


def sample_rows(rows: Sequence[dict[str, Any]]) -> list[SampleRow]:
    """Rows built in memory (the evaluators' per-question scores) as typed records."""
    return [SampleRow.model_validate(row) for row in rows]


class GateDecision(BaseModel):
    """The promotion gate's verdict: promote or not, a printed reason per rule, and the evidence (paired
    questions, interval, p-value, minimum detectable effect, decision) the registry keeps with the model."""

    promote: bool
    reasons: list[str] = Field(default_factory=list)
    evidence: dict[str, Any] = Field(default_factory=dict)

    def __init__(
        self, promote: bool | None = None, reasons: list[str] | None = None, evidence: dict[str, Any] | None = None, **extra: Any
    ) -> None:
        # Positional as the gate builds it (``GateDecision(False, [why])``); pydantic validates every call, also
        # model_validate's (a custom __init__ is what it calls), so a missing ``promote`` is a validation error.
        data: dict[str, Any] = {"reasons": reasons if reasons is not None else [], "evidence": evidence or {}, **extra}
        if promote is not None:
            data["promote"] = promote
        super().__init__(**data)

    def as_dict(self) -> dict[str, Any]:
        """``{"promote", "reasons", "evidence"}``: how the run summary records it."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, body: str | bytes, *, source: str = "gate decision") -> GateDecision:
        """A decision as :meth:`as_dict` wrote it (e.g. a run summary's ``gate``)."""
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise DataContractError(f"{source} is not a valid gate decision ({err['loc']}: {err['msg']})") from exc
