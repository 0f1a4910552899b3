"""The service's front door, one ASGI middleware in front of every route.

In order: the route template (the only path that reaches a metric label; unknown paths are
``unmatched``), the API key (401 before any body is read), the per-key rate limit (429 + Retry-After),
and the body limit, enforced while the body streams in: a chunked body stops being read at
``max_body_bytes`` and gets 413, so a 100 MB upload costs at most the limit in memory; a body that
is not UTF-8 gets 422, and one nested deeper than ``max_json_depth`` (a "JSON bomb": 100,000 nested
arrays in a small body) gets 400 before any parser recurses into it.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse
from starlette.routing import Match

from llmops.serve.auth import ApiKey, KeyRing

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SCOPE_KEY = "llmops.api_key"  # where the endpoint finds the caller
UNMATCHED = "unmatched"


class RateLimiter:
    """A token bucket per key: ``per_minute`` requests a minute, bursts up to ``per_minute``."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity, self.rate = float(per_minute), per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key name -> (tokens, last refill)
        self._lock = threading.Lock()

    def acquire(self, name: str) -> float:
        """0 if the request may go ahead (a token is taken), else the seconds until the next token."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(name, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[name] = (tokens - 1, now)
                return 0.0
            self._buckets[name] = (tokens, now)
            return (1 - tokens) / self.rate


@dataclass
class GuardConfig:
    keys: KeyRing | None
    anonymous: ApiKey  # the caller when no keys are configured
    protected: Collection[str]  # route templates that need a key (when keys are configured)
    limited: Collection[str]  # route templates under the rate limit
    limiter: RateLimiter
    max_body_bytes: int
    max_json_depth: int
    count: Callable[[str, int], None]  # (route template, status) -> metrics
    reject: Callable[[str], None]  # reason -> metrics


def route_template(routes: list[Any], scope: Scope) -> str:
    """The path template of the route ``scope`` matches (also on a wrong method), else ``unmatched``."""
    for route in routes:
        match, _ = route.matches(scope)
        if match in (Match.FULL, Match.PARTIAL):
            return str(getattr(route, "path", UNMATCHED))
    return UNMATCHED


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and 0 < len(token) <= 512 else None
    return None


class Guard:
    """ASGI middleware: bounded metric labels, API keys, rate limits, streaming body limit."""

    def __init__(self, app: ASGIApp, routes: Callable[[], list[Any]], cfg: GuardConfig) -> None:
        self.app, self.routes, self.cfg = app, routes, cfg

    async def _refuse(self, scope: Scope, send: Send, status: int, detail: str, reason: str, headers: dict[str, str]) -> None:
        self.cfg.reject(reason)
        await JSONResponse({"detail": detail}, status_code=status, headers=headers)(scope, _no_body, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        template = route_template(self.routes(), scope)
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._guarded(scope, receive, send_status, template)
        finally:
            self.cfg.count(template, status)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, template: str) -> None:
        cfg = self.cfg
        caller = cfg.anonymous
        if cfg.keys is not None and template in cfg.protected:
            token = bearer_token(scope)
            found = cfg.keys.identify(token) if token else None
            if found is None:
                detail = "missing or unknown API key: send `Authorization: Bearer <secret>`"
                await self._refuse(scope, send, 401, detail, "unauthorized", {"WWW-Authenticate": "Bearer"})
                return
            caller = found
        scope[SCOPE_KEY] = caller
        if template in cfg.limited:
            wait = cfg.limiter.acquire(caller.name)
            if wait > 0:
                detail = f"rate limit for key {caller.name!r} exceeded; retry later"
                await self._refuse(scope, send, 429, detail, "rate_limited", {"Retry-After": str(math.ceil(wait))})
                return
        limit = cfg.max_body_bytes
        too_large = f"request body over {limit} bytes"
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, send, 413, too_large, "body_too_large", {"Connection": "close"})
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:  # stop reading: the rest of the upload is never buffered
                await self._refuse(scope, send, 413, too_large, "body_too_large", {"Connection": "close"})
                return
            if not message.get("more_body", False):
                break
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:  # JSON between systems is UTF-8 (RFC 8259); also catches encoded surrogates
            await self._refuse(scope, send, 422, "request body is not valid UTF-8", "invalid", {})
            return
        brackets = body.count(b"[") + body.count(b"{")  # the common case needs no scan at all
        if brackets > cfg.max_json_depth and json_depth(bytes(body)) > cfg.max_json_depth:
            detail = f"request body is nested deeper than {cfg.max_json_depth} levels"
            await self._refuse(scope, send, 400, detail, "invalid", {})
            return
        await self.app(scope, _replay(bytes(body), receive), send)


_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (brackets inside strings do not count), in
    one linear pass that never recurses; for text that is not JSON, a bound the parser would not exceed."""
    if body.count(b"[") + body.count(b"{") <= 1:
        return body.count(b"[") + body.count(b"{")
    depth = deepest = 0
    for token in _JSON_TOKEN.finditer(body):
        char = token.group()[:1]
        if char in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif char in (b"]", b"}"):
            depth -= 1
    return deepest


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: the client's disconnect

    return replay
