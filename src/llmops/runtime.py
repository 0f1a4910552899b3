"""Process set-up at the edges (CLI, stage entrypoints, tests): the one place that writes ``os.environ``.

Everything here is offline by design: no telemetry, no update checks, no model hub look-ups.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llmops.config import Settings

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "DVC_NO_ANALYTICS": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "MPLBACKEND": "Agg",
    # The ephemeral Prefect API gets 20 s to start by default: too little on a busy 2-core machine.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}


def prepare_environment(settings: Settings) -> Path:
    """Create the state directory, point Prefect at it, and make the offline defaults explicit.

    Must run before ``prefect`` is imported. Values already set by the user win (a Prefect server URL,
    for instance). Returns the state directory.
    """
    home = settings.home_dir
    home.mkdir(parents=True, exist_ok=True)
    os.environ["LLMOPS_HOME"] = str(home)  # stage processes started by DVC inherit it
    os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
    for key, value in (OFFLINE_ENV | s3_environment(settings)).items():
        os.environ.setdefault(key, value)
    # DVC runs `python -m pipelines.<stage>` through a shell: make `python` this interpreter.
    bindir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    return home


def s3_environment(settings: Settings) -> dict[str, str]:
    """Environment that makes every S3 client of the process reach the configured endpoint.

    Our own clients (ingest, registry, history) take ``LLMOPS_S3_ENDPOINT_URL`` directly, and the DVC remote
    gets it in ``.dvc/config.local``; but DVC hashes an ``s3://`` stage dependency (``ingest.conversations:
    s3://...``) with its own client, which only botocore's standard variables reach.
    """
    env = {}
    if settings.s3_endpoint_url:
        env["AWS_ENDPOINT_URL_S3"] = settings.s3_endpoint_url
    if settings.s3_region:
        env["AWS_DEFAULT_REGION"] = settings.s3_region
    return env


# Set in the child of :func:`supervise`: the flow runs in that process, not in another supervisor.
SUPERVISED_ENV = "LLMOPS_SUPERVISED"


def supervise(argv: list[str], *, grace_s: float = 8.0) -> tuple[int, int | None, int]:
    """Run ``argv`` (a flow command) as a child in its own process group and stop it promptly on SIGTERM/SIGINT.

    On a signal the child gets SIGTERM first (Prefect marks its flow run crashed, the run records the
    stage it was in), then its whole group (stage processes, the ephemeral Prefect server), then SIGKILL
    after ``grace_s``. Whatever the child leaves behind in its group is killed when it exits, so no
    Prefect server or stage process is orphaned. Returns (exit code, signal received or None, child pid).
    """
    import signal
    import subprocess
    import time

    env = os.environ | {SUPERVISED_ENV: "1"}
    child = subprocess.Popen(argv, env=env, start_new_session=True)
    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while child.poll() is None and not received:
            try:
                child.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        if received:
            print(f"llmops: {signal.Signals(received[0]).name} received, stopping the run", file=sys.stderr, flush=True)
            steps = [(lambda: child.send_signal(signal.SIGTERM), 3.0), (lambda: _killpg(child.pid, signal.SIGTERM), grace_s)]
            for send, wait in steps:
                send()
                deadline = time.monotonic() + wait
                while child.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.1)
                if child.poll() is not None:
                    break
    finally:
        _killpg(child.pid, signal.SIGKILL)  # stragglers of the child's group (it was its own session)
        if child.poll() is None:
            child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        return 128 + received[0], received[0], child.pid
    return child.returncode, None, child.pid


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # nothing left in the group


def wait_until_healthy(url: str, process: Any, timeout_s: float, *, interval_s: float = 0.5) -> bool:
    """Poll ``url`` until it answers 200 (True), ``process`` (a ``Popen``) exits or ``timeout_s`` pass (False)."""
    import time

    import httpx

    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=min(5.0, timeout_s)).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(interval_s)
    return False


@contextmanager
def prefect_api(settings: Settings, name: str) -> Iterator[str | None]:
    """The Prefect API for a long-running command: ``PREFECT_API_URL`` when set (yields None); else a temporary
    server (yields its URL), log ``$LLMOPS_HOME/logs/<name>-server.log``. It runs in a session of its own, so a
    Ctrl-C to the terminal's process group reaches the command and not the server (Prefect's own temporary server
    shares the group: it stopped first, and the runner spent a minute failing to reach it). It is stopped on the
    way out, and dies with the command's process however that dies (Linux: PR_SET_PDEATHSIG)."""
    import socket
    import subprocess

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from llmops.errors import LLMOpsError

    if PREFECT_API_URL.value():
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = settings.path("logs", f"{name}-server.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}/api"
    with log.open("ab") as out:
        cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        env = {**os.environ, "PREFECT_UI_ENABLED": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        server = subprocess.Popen(cmd, stdout=out, stderr=out, env=env, start_new_session=True, preexec_fn=_terminate_with_parent)
    try:
        if not wait_until_healthy(f"{url}/health", server, 120):
            raise LLMOpsError(f"the temporary Prefect server did not start: see {log}")
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _terminate_with_parent() -> None:
    """In a child before exec: SIGTERM when this process dies however it dies (SIGHUP, SIGKILL)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the context manager still stops it on every exit Python sees
