"""The training set's leak gate, like the redaction boundary's (:mod:`llmops.pii.boundary`).

Every example (its messages and provenance row) and every preference pair is scanned with the redactor's
own detector before anything is published. A record with a residual finding is held back -- removed from
the set and quarantined whole with the reason (``data/trainset-quarantine``, never pushed) -- and the run
goes on; only when more than ``redact.max_leak_share`` of the records are held back does the stage fail.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmops.data.incremental import RecordCache, record_key
from llmops.finetune.trainset import TrainsetResult
from llmops.records import Quarantined


class Scanner(Protocol):
    """What the gate needs from :class:`llmops.pii.scan.Scanner`."""

    def scan(self, texts: Any) -> list[Any]: ...


class CachedScanner:
    """The leak scan with per-text verdicts reused across runs: ``cache`` maps ``hash(fp, text)`` to the spans
    found in the text (entity type and offsets: no value), so after an append only texts not scanned before
    (new examples, a changed context) go through the detector. ``fp`` covers what a verdict depends on (the
    scan params, the detector's code). ``make_scanner`` is called on the first miss only: a run whose texts
    were all scanned before never loads the detector. ``scanned``/``reused`` count distinct texts."""

    def __init__(self, make_scanner: Callable[[], Any], cache: RecordCache, fp: str) -> None:
        self.make_scanner, self.cache, self.fp = make_scanner, cache, fp
        self._scanner: Any = None
        self.scanned = 0
        self.reused = 0

    def scan(self, items: Iterable[tuple[str, str]], batch: int = 512) -> list[Any]:
        """``items``: (location, text) pairs; the findings, as :meth:`llmops.pii.scan.Scanner.scan` gives them."""
        from llmops.pii.scan import scan_in_batches

        return scan_in_batches(items, self._scan, batch)

    def _scan(self, chunk: list[tuple[str, str]]) -> list[Any]:
        from llmops.pii.scan import findings_of

        if not chunk:
            return []
        keys = [record_key(self.fp, text) for _, text in chunk]
        known = self.cache.get_many(keys, "leakscan")
        missing = {key: text for key, (_, text) in zip(keys, chunk, strict=True) if key not in known}
        if missing:
            if self._scanner is None:
                self._scanner = self.make_scanner()
            spans = self._scanner.spans(list(missing.values()))
            fresh = {key: json.dumps(s) for key, s in zip(missing, spans, strict=True)}
            self.cache.put_many(fresh.items(), "leakscan")
            known.update(fresh)
        self.scanned += len(missing)
        self.reused += len(set(keys)) - len(missing)
        return findings_of(chunk, [[tuple(s) for s in json.loads(known[key])] for key in keys])


class CachedIdFlags:
    """:meth:`llmops.pii.redact.Redactor.id_flags` with its verdicts reused across runs (``cache``, keyed by
    ``fp``: the scan params and the detector's code): the training set asks it for the eval dialogues' ids
    every run, and a run whose ids were all judged before never loads the detector. The verdict is a bool per
    id (no value); the keyed hash itself is computed by the redactor, never cached."""

    def __init__(self, flag: Callable[[list[str]], list[bool]], cache: RecordCache, fp: str) -> None:
        self.flag, self.cache, self.fp = flag, cache, fp
        self.judged = 0
        self.reused = 0

    def __call__(self, ids: Sequence[str]) -> list[bool]:
        keys = [record_key(self.fp, i) for i in ids]
        known = self.cache.get_many(keys, "ids")
        missing = list(dict.fromkeys(i for i, key in zip(ids, keys, strict=True) if key not in known))
        if missing:
            fresh = {record_key(self.fp, i): json.dumps(f) for i, f in zip(missing, self.flag(missing), strict=True)}
            self.cache.put_many(fresh.items(), "ids")
            known.update(fresh)
        self.judged += len(missing)
        self.reused += len(set(keys)) - len(missing)
        return [bool(json.loads(known[key])) for key in keys]


@dataclass
class LeakGate:
    """What the training-set leak gate held back: records with a residual finding, whole, with the reason."""

    records_in: int
    quarantined: list[Quarantined] = field(default_factory=list)
    residual: Counter[str] = field(default_factory=Counter)
    max_leak_share: float = 0.0

    @property
    def leak_share(self) -> float:
        return len(self.quarantined) / self.records_in if self.records_in else 0.0

    def report(self) -> dict[str, Any]:
        """Counts and types only, never values (for ``metrics/trainset.json``)."""
        return {
            "in": self.records_in,
            "quarantined": len(self.quarantined),
            "residual_types": dict(sorted(self.residual.items())),
            "leak_share": round(self.leak_share, 6),
            "max_leak_share": self.max_leak_share,
            "passed": self.leak_share <= self.max_leak_share,
        }

    def check(self) -> None:
        """Raise :class:`~llmops.errors.PIILeakError` above ``redact.max_leak_share`` (call after writing the quarantine)."""
        from llmops.errors import PIILeakError

        if self.leak_share <= self.max_leak_share:
            return
        raise PIILeakError(
            f"{self.leak_share:.2%} of the training records ({len(self.quarantined)}/{self.records_in}) still hold "
            f"personal data (types: {dict(self.residual)}), above redact.max_leak_share={self.max_leak_share:.2%}: "
            "nothing was published. The records are in data/trainset-quarantine with their reasons; fix the redact "
            "stage (redact.entities, score_threshold, rules) or raise redact.max_leak_share, then rerun."
        )


def hold_back_leaks(
    result: TrainsetResult, pairs: list[Any], scanner: Scanner, max_leak_share: float
) -> tuple[list[Any], LeakGate]:
    """Scan ``result`` and ``pairs``; records with a residual finding are removed (from ``result`` in place)
    and quarantined. Returns the pairs kept and the gate (:meth:`LeakGate.check`: fail above the share)."""
    from llmops.pii.scan import record_texts

    examples = [*result.train, *result.validation]
    rows = result.provenance()
    records: list[dict[str, Any]] = [{**e.to_openai(), "provenance": r} for e, r in zip(examples, rows, strict=True)]
    records += [{"pair": p.model_dump(mode="json") if hasattr(p, "model_dump") else p} for p in pairs]
    findings: dict[int, list[Any]] = defaultdict(list)
    for f in scanner.scan(record_texts(records, "trainset")):
        findings[int(f.location.split("#", 1)[1].split(":", 1)[0])].append(f)
    gate = LeakGate(records_in=len(records), max_leak_share=max_leak_share)
    for i in sorted(findings):
        gate.residual.update(f.entity_type for f in findings[i])
        where = "; ".join(f"{f.entity_type} at {f.location.split(':', 1)[1]}" for f in findings[i][:5])
        kind = "pair" if i >= len(examples) else ("train" if i < len(result.train) else "validation")
        reason = f"residual personal data in the training set ({kind}): {where}"
        gate.quarantined.append(Quarantined(source=f"trainset:{kind}", line_no=i + 1, reason=reason, raw=json.dumps(records[i])))
    n_train = len(result.train)
    held = set(findings)
    keep_t = [i for i in range(n_train) if i not in held]
    keep_v = [j for j in range(len(result.validation)) if n_train + j not in held]
    result.train, result.train_keys = [result.train[i] for i in keep_t], [result.train_keys[i] for i in keep_t]
    result.validation = [result.validation[j] for j in keep_v]
    result.validation_keys = [result.validation_keys[j] for j in keep_v]
    if held:
        result.skipped["residual_personal_data"] += sum(1 for i in held if i < len(examples))
    kept_pairs = [p for k, p in enumerate(pairs) if len(examples) + k not in held]
    return kept_pairs, gate
