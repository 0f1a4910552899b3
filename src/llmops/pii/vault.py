"""Optional reversible vault: placeholder -> original value, per scope (a conversation, a feedback event);
and the key of the keyed hash that replaces identifiers that look like personal data.

Off by default (``redact.vault``). Values are encrypted with Fernet (AES-128-CBC + HMAC) under a key
from the environment (``LLMOPS_PII_VAULT_KEY``); the file holds one JSON line per entry and is
appended under an exclusive ``flock``, so concurrent writers (process pool, parallel runs) never
interleave lines.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

from llmops.config import RedactParams, Settings
from llmops.errors import ConfigError

_PLACEHOLDER = re.compile(r"<[A-Z_]+_\d+>")


def open_vault(cfg: RedactParams, settings: Settings) -> Vault | None:
    """The vault the settings point at when ``redact.vault`` is on (edge helper for stages and the CLI)."""
    if not cfg.vault:
        return None
    if settings.pii_vault_key is None:
        raise ConfigError("redact.vault is on but LLMOPS_PII_VAULT_KEY is not set: put a Fernet key in the environment")
    return Vault(settings.pii_vault_path, settings.pii_vault_key.get_secret_value())


def id_hash_key(settings: Settings) -> bytes:
    """The key of the keyed id hash: ``LLMOPS_PII_HASH_KEY`` when set, else a random 32-byte key created once
    (owner-only) under ``<home>/pii-vault/id-hash.key``, so hashed ids stay stable across runs on one state
    directory and cannot be recomputed from a guessed e-mail without the key."""
    if settings.pii_hash_key is not None:
        return settings.pii_hash_key.get_secret_value().encode()
    path = settings.path("pii-vault", "id-hash.key")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # a concurrent run created it first
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
    return path.read_text(encoding="utf-8").strip().encode()


def hashed_id(value: str, key: bytes) -> str:
    """``anon-`` + 20 letters of HMAC-SHA256(key, value): stable for one key, letters only (never mistaken for
    a phone or card number by a later scan)."""
    digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:20]
    return "anon-" + digest.translate(_HEX_TO_LETTERS)


_HEX_TO_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")


class Vault:
    """Append-only encrypted store of pseudonym mappings."""

    def __init__(self, path: str | Path, key: str | bytes) -> None:
        from cryptography.fernet import Fernet

        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                "LLMOPS_PII_VAULT_KEY is not a valid Fernet key (32 url-safe base64-encoded bytes): create one with "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from exc
        self.path = Path(path)

    @staticmethod
    def generate_key() -> str:
        from cryptography.fernet import Fernet

        return Fernet.generate_key().decode()

    def put_many(self, entries: Iterable[tuple[str, str, str]]) -> int:
        """Append ``(scope, placeholder, value)`` entries atomically; returns how many were written."""
        lines = [
            json.dumps({"scope": s, "placeholder": p, "token": self._fernet.encrypt(v.encode()).decode()}) + "\n"
            for s, p, v in entries
        ]
        if not lines:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, "".join(lines).encode())
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return len(lines)

    def mapping(self, scope: str) -> dict[str, str]:
        """Placeholder -> original value for one scope (the latest entry wins)."""
        from cryptography.fernet import InvalidToken

        out: dict[str, str] = {}
        if not self.path.exists():
            return out
        with self.path.open(encoding="utf-8") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH)
            for line in fh:
                entry = json.loads(line)
                if entry["scope"] != scope:
                    continue
                try:
                    out[entry["placeholder"]] = self._fernet.decrypt(entry["token"].encode()).decode()
                except InvalidToken as exc:
                    raise ConfigError(
                        f"vault {self.path}: an entry cannot be decrypted; is LLMOPS_PII_VAULT_KEY the key it was written with?"
                    ) from exc
        return out

    def reveal(self, text: str, scope: str) -> str:
        """Put the original values back into a pseudonymised text."""
        mapping = self.mapping(scope)
        return _PLACEHOLDER.sub(lambda m: mapping.get(m.group(0), m.group(0)), text)
