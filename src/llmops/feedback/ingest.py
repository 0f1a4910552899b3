"""Nightly feedback ingestion: new generation-log lines since the watermark, redacted, joined with
ratings/corrections, accumulated in the feedback store, then curated.

The watermark and the store under ``<LLMOPS_HOME>/feedback/`` are committed only after the stage has
written its outputs (:meth:`FeedbackRun.commit`), so a crash re-reads the same lines next time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from llmops.config import FeedbackParams
from llmops.feedback.curate import CurateResult, curate_feedback, join_feedback
from llmops.feedback.log import FeedbackUpdate, NewLogData, collect_new, load_watermark, save_watermark
from llmops.feedback.screen import Moderation
from llmops.jsonl import read_jsonl
from llmops.records import EvalQuestion, FeedbackEvent


class FeedbackRedactor(Protocol):
    """What ingestion needs from :class:`llmops.pii.redact.Redactor`."""

    def redact_feedback(self, events: Sequence[FeedbackEvent]) -> list[FeedbackEvent]: ...

    def redact_corrections(self, generation_ids: Sequence[str], corrections: Sequence[str]) -> list[str]: ...

    def public_ids(self, ids: Sequence[str]) -> list[str]: ...


@dataclass
class FeedbackRun:
    store: Path
    new: NewLogData
    joined: list[FeedbackEvent] = field(default_factory=list)
    curated: CurateResult = field(default_factory=CurateResult)
    orphan_updates: int = 0
    _new_generations: list[FeedbackEvent] = field(default_factory=list)
    _new_updates: list[FeedbackUpdate] = field(default_factory=list)

    def stats(self) -> dict[str, Any]:
        return {
            "new_from_log": self.new.counts(),
            "events": len(self.joined),
            "rated": sum(1 for e in self.joined if e.rating is not None),
            "corrections": sum(1 for e in self.joined if e.correction),
            "orphan_updates": self.orphan_updates,
            **self.curated.stats(),
        }

    def commit(self) -> None:
        """Append what was read to the store and advance the watermark (after outputs are written)."""
        self.store.mkdir(parents=True, exist_ok=True)
        for name, records in (("generations.jsonl", self._new_generations), ("updates.jsonl", self._new_updates)):
            if records:
                with (self.store / name).open("a", encoding="utf-8") as fh:
                    fh.writelines(r.model_dump_json(exclude_none=True) + "\n" for r in records)
        save_watermark(self.store / "watermark.json", self.new.watermark)


def ingest_feedback(
    static_events: Sequence[FeedbackEvent],
    log_root: Path,
    store: Path,
    eval_questions: Sequence[EvalQuestion],
    doc_texts: Mapping[str, str],
    cfg: FeedbackParams,
    redactor: FeedbackRedactor,
    *,
    base_examples: int | None = None,
    moderation: Moderation | None = None,
) -> FeedbackRun:
    """Collect, redact, join and curate (see module docstring). ``base_examples`` and ``moderation``: see
    :func:`llmops.feedback.curate.curate_feedback`."""
    from llmops.pii.normalize import strip_invisible

    new = collect_new(log_root, load_watermark(store / "watermark.json"))
    run = FeedbackRun(store=store, new=new)
    if new.generations:  # served text is cleaned like the clean stage does (format characters out), then redacted
        cleaned = [
            g.model_copy(update={"query": strip_invisible(g.query), "answer": strip_invisible(g.answer)}) for g in new.generations
        ]
        run._new_generations = redactor.redact_feedback(cleaned)
    if new.updates:  # corrections are free text from users: cleaned and redacted like the generations
        ids, texts = [u.generation_id for u in new.updates], [strip_invisible(u.correction or "") for u in new.updates]
        corrections = redactor.redact_corrections(ids, texts)
        # The generation's id crossed the boundary as its public id (hashed under redact.hash_ids): so does
        # the update's, or the two would never join.
        public = redactor.public_ids(ids)
        run._new_updates = [
            u.model_copy(update={"generation_id": g, "correction": c or None})
            for u, g, c in zip(new.updates, public, corrections, strict=True)
        ]
    old_generations = read_jsonl(store / "generations.jsonl", FeedbackEvent) if (store / "generations.jsonl").exists() else []
    old_updates = read_jsonl(store / "updates.jsonl", FeedbackUpdate) if (store / "updates.jsonl").exists() else []
    generations = [*static_events, *old_generations, *run._new_generations]
    old_updates = _rejoin(old_updates, {g.generation_id for g in generations}, redactor)
    run.joined, run.orphan_updates = join_feedback(generations, [*old_updates, *run._new_updates])
    run.curated = curate_feedback(run.joined, eval_questions, doc_texts, cfg, base_examples=base_examples, moderation=moderation)
    return run


def _rejoin(updates: list[FeedbackUpdate], known: set[str], redactor: FeedbackRedactor) -> list[FeedbackUpdate]:
    """Stored updates that do not name a known generation but whose public id does (stored with the raw id
    before ids were mapped at ingestion) are given that id, so they join instead of staying orphans."""
    lost = [i for i, u in enumerate(updates) if u.generation_id not in known]
    if not lost:
        return updates
    out = list(updates)
    for i, public in zip(lost, redactor.public_ids([updates[i].generation_id for i in lost]), strict=True):
        if public in known:
            out[i] = updates[i].model_copy(update={"generation_id": public})
    return out
