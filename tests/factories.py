"""Small builders of records for tests (one place, so a contract change is fixed once)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

from llmops.records import FeedbackEvent

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def feedback_event(
    gid: str,
    query: str,
    answer: str,
    rating: int | None = None,
    correction: str | None = None,
    docs: list[str] | None = None,
    minutes: int = 0,
) -> FeedbackEvent:
    """A generation-log event with neutral lineage fields."""
    return FeedbackEvent(
        generation_id=gid,
        ts=T0 + timedelta(minutes=minutes),
        query=query,
        answer=answer,
        retrieved_doc_ids=docs or [],
        model_id="m",
        index_version="i",
        data_rev="r",
        latency_ms=1,
        prompt_tokens=1,
        completion_tokens=1,
        rating=rating,
        correction=correction,
    )


@dataclass
class Webhook:
    """A loopback HTTP endpoint standing in for a Slack-compatible webhook; ``received`` holds the JSON bodies."""

    url: str
    received: list[dict] = field(default_factory=list)


@contextmanager
def serve_webhook() -> Iterator[Webhook]:
    hook = Webhook("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook.url = f"http://127.0.0.1:{server.server_port}/hook"
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_json(respond: Callable[[dict], tuple[int, dict]]) -> Iterator[str]:
    """A loopback OpenAI-style JSON API: each POST body goes to ``respond``, which returns (status, body).
    Yields the base URL (``http://127.0.0.1:<port>/v1``)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            code, payload = respond(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            raw = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1"
    finally:
        server.shutdown()
        server.server_close()
