"""The redact stage's conversations, partition by partition: only new or changed conversations are redacted
and leak-scanned (:mod:`llmops.data.incremental`), in batches of ``redact.stream_batch``, written as they go.

A conversation the leak scan still finds personal data in is held back in ``<quarantine dir>/<day>.jsonl``
(its pre-redaction version, sealed with the vault key when set), as :mod:`llmops.pii.boundary` does for a
whole batch; the cache remembers the verdict, not the data (the quarantine is rebuilt from the input).

The small whole files (feedback, documents) are redacted again only when one of them, the stage's
fingerprint, the seal key or one of their outputs changed (:func:`reusable_files`): a night with nothing
new loads no detector at all.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmops.config import RedactParams
from llmops.data.incremental import (
    AtomicLines,
    Counts,
    PartitionedOutput,
    RecordCache,
    batched,
    file_digest,
    iter_lines,
    partitions,
    record_key,
)
from llmops.data.quarantine import QuarantineWriter
from llmops.pii.boundary import Crossing, quarantine_reason, residual_findings
from llmops.pii.redact import Redactor
from llmops.pii.scan import Scanner
from llmops.records import Conversation, Quarantined

# Params that change how fast redaction runs, never what it writes: not part of the fingerprint.
SPEED_ONLY = {"workers", "parallel_min_texts", "batch_size", "stream_batch"}
CODE = ["pipelines/redact.py", "src/llmops/data/redaction.py", "src/llmops/pii", "src/llmops/records.py"]


def redact_fingerprint(cfg: RedactParams, id_key: bytes, code: Sequence[str | Path] = CODE) -> str:
    """Params that change the output, the redaction code, and the id-hash key (by its hash)."""
    from llmops.data.incremental import fingerprint

    params = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in SPEED_ONLY}
    return fingerprint(params, code, extra=hashlib.sha256(id_key).hexdigest())


def _redact_misses(redactor: Redactor, scanner: Scanner, convs: list[Conversation]) -> list[str]:
    """Cache values for freshly redacted conversations: ``R<redacted json>`` or ``Q<verdict json>``."""
    after = redactor.redact_conversations(convs)
    findings = residual_findings("conversations", after, scanner)
    out = []
    for i, red in enumerate(after):
        if i in findings:
            verdict = {"reason": quarantine_reason(findings[i]), "types": [f.entity_type for f in findings[i]]}
            out.append("Q" + json.dumps(verdict))
        else:
            out.append("R" + red.model_dump_json(exclude_none=True))
    return out


def redact_partitioned(
    clean_dir: Path,
    out: PartitionedOutput,
    quarantine_dir: Path,
    cache: RecordCache,
    redactor: Redactor,
    seal_key: str | bytes | None,
    batch_size: int,
) -> tuple[Crossing[Conversation], Counts]:
    """Redact the day partitions of ``clean_dir`` into ``out`` (``out.companions`` holds ``quarantine_dir``).

    Returns the leak-gate counts over every conversation (reused ones included) and what was processed,
    reused and deleted."""
    scanner = Scanner(redactor.cfg, redactor)
    crossing: Crossing[Conversation] = Crossing(kind="conversations", records_in=0)
    counts = Counts()
    reused: list[str] = []  # partitions reused whole: their cache entries stay (one write for all of them)
    for part in partitions(clean_dir):
        name, md5 = part.stem, out.digest(part)
        counts.partitions += 1
        entry = out.reusable(name, md5)
        if entry is not None:
            crossing.records_in += int(entry["records_in"])
            crossing.streamed_out += int(entry["out"])
            crossing.streamed_held += int(entry["held"])
            crossing.residual.update(entry.get("residual", {}))
            counts.reused += int(entry["records_in"])
            counts.partitions_reused += 1
            reused.append(name)
            continue
        stats = _redact_partition(part, name, out, quarantine_dir, cache, redactor, scanner, seal_key, batch_size, counts)
        crossing.records_in += stats["records_in"]
        crossing.streamed_out += stats["out"]
        crossing.streamed_held += stats["held"]
        crossing.residual.update(stats["residual"])
        out.record(name, md5, **stats)
        counts.partitions_written += 1
    cache.keep(reused)
    counts.partitions_removed = out.finish()
    counts.deleted = cache.sweep()
    return crossing, counts


def _redact_partition(
    part: Path,
    name: str,
    out: PartitionedOutput,
    quarantine_dir: Path,
    cache: RecordCache,
    redactor: Redactor,
    scanner: Scanner,
    seal_key: str | bytes | None,
    batch_size: int,
    counts: Counts,
) -> dict[str, Any]:
    writer = AtomicLines(out.path(name))
    held: QuarantineWriter | None = None
    stats: dict[str, Any] = {"records_in": 0, "out": 0, "held": 0, "residual": {}}
    (quarantine_dir / f"{name}.jsonl").unlink(missing_ok=True)
    try:
        for batch in batched(iter_lines(part), batch_size):
            keys = [record_key(out.fp, line) for _, line in batch]
            known = cache.get_many(keys, name)
            misses = [i for i, k in enumerate(keys) if k not in known]
            if misses:
                values = _redact_misses(redactor, scanner, [Conversation.model_validate_json(batch[i][1]) for i in misses])
                fresh = {keys[i]: v for i, v in zip(misses, values, strict=True)}
                cache.put_many(fresh.items(), name)
                known.update(fresh)
                counts.processed += len(misses)
            counts.reused += len(batch) - len(misses)
            for key, (line_no, line) in zip(keys, batch, strict=True):
                stats["records_in"] += 1
                value = known[key]
                if value[0] == "R":
                    writer.write(value[1:])
                    stats["out"] += 1
                    continue
                verdict = json.loads(value[1:])
                if held is None:
                    held = QuarantineWriter(quarantine_dir / f"{name}.jsonl", seal_key)
                held(Quarantined(source=f"redact:conversations/{name}", line_no=line_no, reason=verdict["reason"], raw=line))
                stats["held"] += 1
                for t in verdict["types"]:
                    stats["residual"][t] = stats["residual"].get(t, 0) + 1
    except BaseException:
        writer.abort()
        if held is not None:
            held.out.abort()
        raise
    writer.commit()
    if held is not None:
        held.close()
    return stats


def files_key(fp: str, inputs: Sequence[Path], seal_key: str | bytes | None) -> str:
    """What the whole-file outputs depend on: the stage's fingerprint, each input's digest, the seal key's hash."""
    seal = seal_key.encode() if isinstance(seal_key, str) else seal_key
    parts = [fp, *(file_digest(p) if p.exists() else "absent" for p in inputs), hashlib.sha256(seal or b"").hexdigest()]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _digests(outputs: Sequence[Path]) -> list[str]:
    return [file_digest(p) if p.exists() else "absent" for p in outputs]


def reusable_files(state: Path, key: str, outputs: Sequence[Path]) -> list[Crossing[Any]] | None:
    """The leak-gate counts of the last whole-file redaction when it had the same ``key`` and every output is
    still what it wrote; None: redact them again. ``state`` holds digests and counts only."""
    if not state.exists():
        return None
    stored = json.loads(state.read_text(encoding="utf-8"))
    if stored.get("key") != key or stored.get("outputs") != _digests(outputs):
        return None
    return [
        Crossing(
            kind=c["kind"],
            records_in=c["in"],
            streamed_out=c["out"],
            streamed_held=c["quarantined"],
            residual=Counter(c["residual_types"]),
        )
        for c in stored["crossings"]
    ]


def remember_files(state: Path, key: str, outputs: Sequence[Path], crossings: Sequence[Crossing[Any]]) -> None:
    """Record what :func:`reusable_files` checks, after the outputs were written."""
    state.parent.mkdir(parents=True, exist_ok=True)
    body = {"key": key, "outputs": _digests(outputs), "crossings": [{"kind": c.kind, **c.counts()} for c in crossings]}
    state.write_text(json.dumps(body) + "\n", encoding="utf-8")
