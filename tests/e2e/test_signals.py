"""SIGTERM to `llmops run nightly` in the middle of a stage: the command ends within seconds, the run is
recorded as crashed in that stage (`llmops status`, trend page), nothing of it keeps running (no ephemeral
Prefect server, no stage process), and the last good index and model still serve."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmops.workspace import STAGES
from tests.conftest import make_workspace

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def _llmops(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmops", *args], cwd=cwd, capture_output=True, text=True, timeout=1500)


def _processes_of(home: Path) -> list[int]:
    """Processes whose environment names this LLMOPS_HOME (the run's children inherit it)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"LLMOPS_HOME={home}".encode() in environ:
            found.append(int(proc.name))
    return found


def _running_record(home: Path) -> dict | None:
    for path in sorted((home / "runs").glob("*-nightly.json")) if (home / "runs").exists() else []:
        record = json.loads(path.read_text())
        if record.get("state") == "running" and record.get("stage") in STAGES:
            return record
    return None


def test_sigterm_mid_stage_stops_the_run_and_records_it(tmp_path: Path, settings_env: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    first = _llmops("run", "nightly", cwd=ws)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    before = json.loads(_llmops("status", "--json", cwd=ws).stdout)
    assert before["champion"] and before["index_version"]

    # New data: ingest and everything after it rerun; stop the run once a stage is under way.
    sample = ws / "data/sample/conversations.jsonl"
    lines = sample.read_text().splitlines()
    extra = json.loads(lines[0]) | {"conversation_id": "added-after-the-first-run"}
    sample.write_text("\n".join([json.dumps(extra), *lines]) + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmops", "run", "nightly"], cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 900
    while (record := _running_record(settings_env)) is None:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0][-3000:]
        time.sleep(0.5)
    time.sleep(2)  # inside the stage
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    output, _ = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 15, output[-3000:]
    assert proc.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert "SIGTERM" in output

    time.sleep(1)
    assert _processes_of(settings_env) == []  # no ephemeral Prefect server, no stage process left behind
    after = json.loads(_llmops("status", "--json", cwd=ws).stdout)
    crashed = after["last_runs"][0]
    assert crashed["state"] == "crashed" and crashed["stage"] in STAGES and crashed["run_id"] == record["run_id"]
    assert crashed["error"]
    assert after["champion"]["model_id"] == before["champion"]["model_id"]
    assert after["index_version"] == before["index_version"]
    assert after["data_rev"] == before["data_rev"]  # nothing of the stopped run was published
    assert "nightly-crashed-in-" in (settings_env / "trend.html").read_text()
    table = _llmops("status", cwd=ws).stdout
    assert "crashed" in table


def _serving(tmp_path: Path) -> subprocess.Popen[str]:
    """`llmops serve-schedules` without PREFECT_API_URL, in its own process group, once it serves."""
    ws = make_workspace(tmp_path / "ws")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {"PREFECT_HOME": str(tmp_path / "prefect")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmops", "serve-schedules"],
        cwd=ws,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own group, as a shell gives a foreground job
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "being served" in line:
            break
    else:
        pytest.fail("serve-schedules did not start: " + "".join(lines)[-3000:])
    return proc


def test_ctrl_c_stops_serve_schedules_and_its_temporary_server(tmp_path: Path, settings_env: Path) -> None:
    """Ctrl-C reaches the whole foreground process group: the schedules stop within seconds, without
    tracebacks of a runner that outlived its API, and no Prefect server is left behind."""
    proc = _serving(tmp_path)
    time.sleep(8)  # the runner is polling (an interrupt in its first instant is Prefect's own start-up race)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
    start = time.monotonic()
    rest, _ = proc.communicate(timeout=60)
    assert time.monotonic() - start < 20, rest[-3000:]
    assert "Traceback" not in rest and "ConnectError" not in rest, rest[-3000:]
    assert _processes_of(settings_env) == []


def test_a_killed_serve_schedules_takes_its_temporary_server_along(tmp_path: Path, settings_env: Path) -> None:
    """SIGKILL (or a closed terminal's SIGHUP) runs no Python cleanup: the server, in a session of its own, must
    still not outlive the command."""
    proc = _serving(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)  # reaped, its pipe closed
    deadline = time.monotonic() + 30
    while _processes_of(settings_env) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _processes_of(settings_env) == []
