"""API key parsing (env and file, plain and sha256), identification, and the per-key token bucket."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydantic import SecretStr

from llmops.config import Settings
from llmops.errors import ConfigError
from llmops.serve.auth import ApiKey, KeyRing, load_keys, parse_key
from llmops.serve.guard import RateLimiter

SECRET = "s3cret-value-0123456789"
HASHED = hashlib.sha256(SECRET.encode()).hexdigest()


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        (f"web:{SECRET}", ApiKey("web", "user")),
        (f"ops@reviewer:{SECRET}", ApiKey("ops", "reviewer")),
        (f"  ci-bot.1@user:{SECRET}  ", ApiKey("ci-bot.1", "user")),
        (f"ops@reviewer:sha256:{HASHED}", ApiKey("ops", "reviewer")),
        (f"colon:{SECRET}:tail", ApiKey("colon", "user")),  # the secret is everything after the first ':'
    ],
)
def test_entries_parse_and_identify(entry: str, key: ApiKey) -> None:
    ring = KeyRing([parse_key(entry, "test")])
    secret = entry.strip().split(":", 1)[1]
    secret = SECRET if secret.startswith("sha256:") else secret
    assert ring.identify(secret) == key
    assert ring.identify(secret + "x") is None and ring.identify("") is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("web", "name[@role]:secret"),
        ("web:", "name[@role]:secret"),
        (f"we b:{SECRET}", "must be 1-64"),
        (f"web@admin:{SECRET}", "not one of user, reviewer"),
        ("web:short", "shorter than 16"),
        ("web:sha256:abc", "64 hex digits"),
    ],
)
def test_bad_entries_are_config_errors_without_the_secret(entry: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")) as info:
        parse_key(entry, "#1")
    assert SECRET not in str(info.value)


def test_load_keys_from_env_and_file(tmp_path: Path) -> None:
    assert load_keys(Settings(home=tmp_path)) is None
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# reviewers\nops@reviewer:sha256:{HASHED}\n\nbot:{'b' * 20}\n", encoding="utf-8")
    ring = load_keys(Settings(home=tmp_path, api_keys=SecretStr(f"web:{'w' * 20}, app:{'a' * 20}"), api_keys_file=keys_file))
    assert ring is not None and ring.names == ["web", "app", "ops", "bot"]
    assert ring.identify(SECRET) == ApiKey("ops", "reviewer") and ring.identify("a" * 20) == ApiKey("app", "user")
    with pytest.raises(ConfigError, match="used twice"):
        load_keys(Settings(home=tmp_path, api_keys=SecretStr(f"web:{'w' * 20},web:{'v' * 20}")))
    with pytest.raises(ConfigError, match="cannot read"):
        load_keys(Settings(home=tmp_path, api_keys_file=tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"keys:3"):
        keys_file.write_text(f"web:{'w' * 20}\n\nbroken\n", encoding="utf-8")
        load_keys(Settings(home=tmp_path, api_keys_file=keys_file))


def test_token_bucket_per_key() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(60)] == [0.0] * 60
    assert limiter.acquire("a") == pytest.approx(1.0)  # one token a second
    assert limiter.acquire("b") == 0.0  # buckets are per key
    now[0] = 0.5
    assert limiter.acquire("a") == pytest.approx(0.5)
    now[0] = 1.0
    assert limiter.acquire("a") == 0.0 and limiter.acquire("a") > 0
    now[0] = 1000.0  # refills to the burst size, not beyond
    assert sum(limiter.acquire("a") == 0.0 for _ in range(100)) == 60


@pytest.mark.parametrize(
    ("host", "keyed", "no_auth", "bound", "says"),
    [
        ("0.0.0.0", True, False, "0.0.0.0", None),
        ("0.0.0.0", False, False, "127.0.0.1", "127.0.0.1 only (not 0.0.0.0)"),
        ("127.0.0.1", False, False, "127.0.0.1", "no API keys"),
        ("0.0.0.0", False, True, "0.0.0.0", "--no-auth"),
    ],
)
def test_serve_binds_loopback_without_keys(host: str, keyed: bool, no_auth: bool, bound: str, says: str | None) -> None:
    from llmops.cli.serve import bind_address

    address, notice = bind_address(host, keyed, no_auth, "user")
    assert address == bound
    assert notice is None if says is None else says in (notice or "")
