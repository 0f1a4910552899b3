"""Quarantine: records held back before or at the redaction boundary, whole, with their reason.

Quarantined records are personal data (raw lines, records with residual PII). They stay in the local
workspace (the DVC outs holding them are ``push: false``) and, when a vault key is configured
(``LLMOPS_PII_VAULT_KEY``), each record is sealed with it (Fernet), so a copied quarantine file is
unreadable without the key. Reasons, sources and line numbers stay readable: they carry no values.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from pathlib import Path

from llmops.errors import ConfigError
from llmops.jsonl import read_jsonl, write_jsonl
from llmops.records import Quarantined


def _fernet(key: str | bytes) -> object:
    from cryptography.fernet import Fernet

    try:
        return Fernet(key)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            "LLMOPS_PII_VAULT_KEY is not a valid Fernet key (32 url-safe base64-encoded bytes): create one with "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        ) from exc


def hold(source: str, line_no: int, reason: str, raw: bytes | str) -> Quarantined:
    """A quarantine record keeping ``raw`` whole: text as is, bytes that are not UTF-8 as base64."""
    if isinstance(raw, bytes):
        try:
            return Quarantined(source=source, line_no=line_no, reason=reason, raw=raw.decode("utf-8"))
        except UnicodeDecodeError:
            encoded = base64.b64encode(raw).decode("ascii")
            return Quarantined(source=source, line_no=line_no, reason=reason, raw=encoded, raw_encoding="base64")
    return Quarantined(source=source, line_no=line_no, reason=reason, raw=raw)


def original(record: Quarantined) -> bytes:
    """The held record's bytes, exactly as they arrived (an unsealed record)."""
    if record.sealed:
        raise ConfigError(f"{record.source}:{record.line_no} is sealed: read the quarantine with its vault key")
    return base64.b64decode(record.raw) if record.raw_encoding == "base64" else record.raw.encode("utf-8")


def seal(records: Iterable[Quarantined], key: str | bytes | None) -> list[Quarantined]:
    """Encrypt each record's ``raw`` with the vault key; without a key, records are returned unchanged."""
    if key is None:
        return list(records)
    fernet = _fernet(key)
    return [
        r if r.sealed else r.model_copy(update={"raw": fernet.encrypt(r.raw.encode("utf-8")).decode("ascii"), "sealed": True})  # type: ignore[attr-defined]
        for r in records
    ]


def unseal(records: Iterable[Quarantined], key: str | bytes) -> list[Quarantined]:
    """Decrypt sealed records (``llmops pii quarantine`` and reprocessing use this)."""
    from cryptography.fernet import InvalidToken

    fernet = _fernet(key)
    out = []
    for r in records:
        if not r.sealed:
            out.append(r)
            continue
        try:
            raw = fernet.decrypt(r.raw.encode("ascii")).decode("utf-8")  # type: ignore[attr-defined]
        except InvalidToken as exc:
            raise ConfigError(
                f"{r.source}:{r.line_no} cannot be decrypted: is LLMOPS_PII_VAULT_KEY the key the quarantine was written with?"
            ) from exc
        out.append(r.model_copy(update={"raw": raw, "sealed": False}))
    return out


def write_quarantine(path: str | Path, records: Sequence[Quarantined], key: str | bytes | None) -> int:
    """Write the quarantine file (sealed when ``key`` is given, owner-only permissions); returns its size."""
    path = Path(path)
    write_jsonl(path, seal(records, key))
    path.chmod(0o600)
    return len(records)


def read_quarantine(path: str | Path, key: str | bytes | None = None) -> list[Quarantined]:
    """Read a quarantine file back; with ``key``, sealed records are decrypted."""
    records = read_jsonl(path, Quarantined)
    return unseal(records, key) if key is not None else records


class QuarantineWriter:
    """A quarantine file written record by record (sealed with ``key`` when given), moved into place on
    :meth:`close`: what a streaming stage holds back, without keeping it in memory."""

    def __init__(self, path: str | Path, key: str | bytes | None) -> None:
        from llmops.data.incremental import AtomicLines

        self.out = AtomicLines(path, mode=0o600)
        self.fernet = _fernet(key) if key is not None else None
        self.count = 0

    def __call__(self, record: Quarantined) -> None:
        if self.fernet is not None and not record.sealed:
            token = self.fernet.encrypt(record.raw.encode("utf-8")).decode("ascii")  # type: ignore[attr-defined]
            record = record.model_copy(update={"raw": token, "sealed": True})
        self.out.write(record.model_dump_json(exclude_none=True))
        self.count += 1

    def carry(self, path: str | Path) -> None:
        """Keep the records of an earlier quarantine file as they are (sealed or not)."""
        path = Path(path)
        if path.exists():
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        self.out.write(line.rstrip("\n"))
                        self.count += 1

    def close(self) -> None:
        self.out.commit()
