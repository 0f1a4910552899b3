"""The README's Prefect server path, as written: a real `prefect server start` on loopback (SQLite), the
deployments of prefect.yaml deployed with only PREFECT_API_URL set, a process worker started elsewhere;
a nightly and a manual retrain with an override started at the same time both complete, their publishing
never overlaps (one waits for the other's slot), params.yaml is unchanged, the override is in the
retrain's summary and the model's lineage."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from llmops.runtime import OFFLINE_ENV, wait_until_healthy
from tests.conftest import ROOT, make_workspace

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3000)]

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(prefect_home: Path, **extra: str) -> dict[str, str]:
    """A clean environment: PATH with the venv first, offline switches, its own PREFECT_HOME; no LLMOPS_*."""
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    env |= OFFLINE_ENV | {"PREFECT_HOME": str(prefect_home)}
    return env | extra


def _prefect(*args: str, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    out = subprocess.run([str(BIN / "prefect"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"prefect {' '.join(args)}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = _env(tmp_path / "server-home", PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false")  # no cron runs mid-test
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    try:
        assert wait_until_healthy(f"{url}/health", proc, 240, interval_s=1), (tmp_path / "server.log").read_text()[-3000:]
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()


def _run_id(output: str) -> str:
    match = re.search(r"UUID: ([0-9a-f-]{36})", output)
    assert match, output
    return match.group(1)


def _wait_for(url: str, run_ids: list[str], timeout: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        runs = {i: httpx.get(f"{url}/flow_runs/{i}", timeout=30).json() for i in run_ids}
        if all(r["state"]["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} for r in runs.values()):
            return runs
        assert time.monotonic() < deadline, {i: r["state"] for i, r in runs.items()}
        time.sleep(5)


def test_nightly_and_manual_retrain_on_a_server_and_process_worker(server: str, tmp_path: Path, model_cache: Path) -> None:
    project = make_workspace(tmp_path / "clone")  # the project as cloned: sources, params, tiny sample data
    shutil.copy(ROOT / "prefect.yaml", project / "prefect.yaml")
    params_before = (project / "params.yaml").read_bytes()
    client_env = _env(tmp_path / "client-home", PREFECT_API_URL=server)

    _prefect("work-pool", "create", "llmops-process", "--type", "process", cwd=project, env=client_env)
    deployed = _prefect("--no-prompt", "deploy", "--all", cwd=project, env=client_env)
    assert "nightly/nightly" in deployed and "retrain/retrain" in deployed and "monitor/monitor" in deployed
    elsewhere = tmp_path / "worker-cwd"
    elsewhere.mkdir()
    # The converted base model is shared between tests (a speed-up only; the default is <LLMOPS_HOME>/models).
    worker_env = client_env | {"LLMOPS_MODEL_CACHE": str(model_cache), "OMP_NUM_THREADS": "1"}
    worker_log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [str(BIN / "prefect"), "worker", "start", "--pool", "llmops-process"],
        cwd=elsewhere, env=worker_env, stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        nightly = _run_id(_prefect("deployment", "run", "nightly/nightly", cwd=project, env=client_env))
        manual = {"reason": "manual check", "overrides": {"finetune.max_steps": "1"}}
        retrain = _run_id(
            _prefect("deployment", "run", "retrain/retrain", "--params", json.dumps(manual), cwd=project, env=client_env)
        )
        runs = _wait_for(server, [nightly, retrain], timeout=2400)
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=60)
        worker_log.close()
    log = (tmp_path / "worker.log").read_text()
    assert all(r["state"]["type"] == "COMPLETED" for r in runs.values()), log[-6000:]
    assert "is busy" not in log

    assert (project / "params.yaml").read_bytes() == params_before
    home = project / ".llmops"  # LLMOPS_HOME unset on the worker: the project's default state dir
    summaries = {json.loads(p.read_text())["flow"]: json.loads(p.read_text()) for p in (home / "runs").glob("*.json")}
    assert summaries["retrain"]["overrides"] == {"finetune.max_steps": 1}
    assert summaries["retrain"]["reason"] == "manual check" and summaries["nightly"]["overrides"] == {}
    assert {summaries[f]["run_id"] for f in ("nightly", "retrain")} == {nightly, retrain}
    # Publishing (remote, registry, dvc.lock) held the global concurrency limit: the two never overlapped.
    first, second = sorted((summaries[f]["publish"] for f in ("nightly", "retrain")), key=lambda p: p["acquired"])
    assert datetime.fromisoformat(first["released"]) <= datetime.fromisoformat(second["acquired"])
    limit = httpx.get(f"{server}/v2/concurrency_limits/llmops-publish", timeout=30).json()
    assert limit["limit"] == 1 and limit["active_slots"] == 0
    models = json.loads(
        subprocess.run(
            [sys.executable, "-m", "llmops", "models", "list", "--json"],
            cwd=project,
            env=_env(tmp_path / "client-home"),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    retrained = [m for m in models if m.get("reason") == "manual check"]
    assert retrained and retrained[0]["training"]["overrides"] == {"finetune.max_steps": 1}, models
    # Every run worked in its own workspace, removed once it completed.
    assert not any((home / "workspaces").iterdir())


def test_drift_event_starts_the_retrain_deployment(server: str, tmp_path: Path) -> None:
    """The monitor's `llmops.drift.detected` event, through the trigger in prefect.yaml, creates a retrain
    flow run with the reason (no worker needed to see the run scheduled)."""
    project = make_workspace(tmp_path / "clone")
    shutil.copy(ROOT / "prefect.yaml", project / "prefect.yaml")
    client_env = _env(tmp_path / "client-home", PREFECT_API_URL=server)
    _prefect("work-pool", "create", "llmops-process", "--type", "process", cwd=project, env=client_env)
    _prefect("--no-prompt", "deploy", "--all", cwd=project, env=client_env)
    deployment = httpx.get(f"{server}/deployments/name/retrain/retrain", timeout=30).json()
    emit = (
        "from llmops.monitoring.triggers import emit_drift_event\n"
        "print(emit_drift_event('data drift: channel, intent', run_id='monitor-run', project='clone'))\n"
    )
    subprocess.run([sys.executable, "-c", emit], cwd=project, env=client_env, check=True, timeout=120)
    deadline = time.monotonic() + 180
    while True:
        runs = httpx.post(
            f"{server}/flow_runs/filter", json={"deployments": {"id": {"any_": [deployment["id"]]}}}, timeout=30
        ).json()
        if runs:
            break
        assert time.monotonic() < deadline, "no retrain run was created by the trigger"
        time.sleep(2)
    assert runs[0]["parameters"]["reason"] == "monitor: data drift: channel, intent"
