"""API keys of the answer service: who may ask, who may correct, and in whose name it is logged.

Format (``LLMOPS_API_KEYS``, comma-separated, or ``LLMOPS_API_KEYS_FILE``, one entry a line, ``#`` comments)::

    <name>[@<role>]:<secret>        role: user (default) or reviewer
    <name>[@<role>]:sha256:<hex>    the secret stored as its SHA-256 hex digest

Only the key *name* ever leaves this module (generation log, feedback, metrics); secrets are kept as
digests and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from llmops.config import Settings
from llmops.errors import ConfigError

Role = Literal["user", "reviewer"]
ROLES: tuple[Role, ...] = ("user", "reviewer")
ANONYMOUS = "anonymous"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class ApiKey:
    """A caller: the key's name and role (never its secret)."""

    name: str
    role: Role


def digest(secret: str) -> bytes:
    """SHA-256 of a secret, as stored and compared."""
    return hashlib.sha256(secret.encode("utf-8")).digest()


class KeyRing:
    """The configured keys; :meth:`identify` maps a bearer token to its :class:`ApiKey`."""

    def __init__(self, entries: Iterable[tuple[ApiKey, bytes]]) -> None:
        self._entries = list(entries)
        names = [k.name for k, _ in self._entries]
        if len(set(names)) != len(names):
            raise ConfigError("API keys: a key name is used twice; give every key its own name")
        if not self._entries:
            raise ConfigError("API keys: none configured; set LLMOPS_API_KEYS or LLMOPS_API_KEYS_FILE, or serve without keys")

    @property
    def names(self) -> list[str]:
        return [k.name for k, _ in self._entries]

    def identify(self, token: str) -> ApiKey | None:
        """The key whose secret is ``token``, or None. Every entry is compared (no early exit on a match)."""
        presented = digest(token)
        found: ApiKey | None = None
        for key, stored in self._entries:
            if hmac.compare_digest(presented, stored):
                found = key
        return found


def parse_key(entry: str, where: str) -> tuple[ApiKey, bytes]:
    """One ``name[@role]:secret`` entry; a :class:`ConfigError` naming ``where`` (never the secret) if malformed."""
    label, sep, secret = entry.strip().partition(":")
    name, _, role = label.partition("@")
    role = role or "user"
    if not sep or not secret:
        raise ConfigError(f"API key {where}: expected name[@role]:secret, got no ':secret' part")
    if not _NAME.match(name):
        raise ConfigError(f"API key {where}: name {name[:64]!r} must be 1-64 letters, digits, '_', '.', '-'")
    if role not in ROLES:
        raise ConfigError(f"API key {where} ({name}): role {role[:20]!r} is not one of {', '.join(ROLES)}")
    if secret.startswith("sha256:"):
        hexdigest = secret.removeprefix("sha256:")
        if not _HEX.match(hexdigest):
            raise ConfigError(f"API key {where} ({name}): sha256: must be followed by 64 hex digits")
        return ApiKey(name, role), bytes.fromhex(hexdigest)
    if len(secret) < 16:
        raise ConfigError(f"API key {where} ({name}): secret shorter than 16 characters; use e.g. `openssl rand -hex 24`")
    return ApiKey(name, role), digest(secret)


def load_keys(settings: Settings) -> KeyRing | None:
    """Keys from ``LLMOPS_API_KEYS`` and/or ``LLMOPS_API_KEYS_FILE``; None when neither is set."""
    entries: list[tuple[ApiKey, bytes]] = []
    if settings.api_keys is not None:
        raw = settings.api_keys.get_secret_value()
        entries += [parse_key(e, f"#{i + 1} of LLMOPS_API_KEYS") for i, e in enumerate(raw.split(",")) if e.strip()]
    if settings.api_keys_file is not None:
        path = settings.api_keys_file.expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"LLMOPS_API_KEYS_FILE {path}: cannot read it ({exc.strerror}); fix the path or unset it") from None
        for no, line in enumerate(lines, 1):
            if line.strip() and not line.lstrip().startswith("#"):
                entries.append(parse_key(line, f"{path}:{no}"))
    if settings.api_keys is None and settings.api_keys_file is None:
        return None
    return KeyRing(entries)
