"""Human approval: a model the gate passed waits in a paused flow run until a reviewer answers (Prefect's
pause_flow_run with a typed input form), or the pause times out and the model stays pending."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import pytest

from llmops.config import Settings, apply_overrides
from llmops.finetune.registry import ModelRecord, Registry

ROOT = Path(__file__).resolve().parents[2]


def _pending(project: Path, timeout_s: int) -> ModelRecord:
    project.mkdir()
    (project / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    apply_overrides(project / "params.yaml", {"gate.require_approval": True, "gate.approval_timeout_s": timeout_s})
    reg = Registry.from_settings(Settings())
    reg.register(ModelRecord(model_id="cand", base_model="b", data_rev="r"), None)
    return reg.set_status("cand", "pending", ["gate passed; waiting for approval"])


def _start_paused(run: Callable[[], None], run_id_file: Path) -> tuple[threading.Thread, UUID]:
    """Start the approval flow in a thread; wait until it has written its run id and is paused."""
    from prefect.client.orchestration import get_client

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 60
    while not run_id_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    run_id = UUID(run_id_file.read_text())
    with get_client(sync_client=True) as client:
        while not client.read_flow_run(run_id).state.is_paused() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert client.read_flow_run(run_id).state.is_paused()
    return worker, run_id


def test_paused_flow_promotes_on_the_reviewers_approval(prefect_api: None, settings_env: Path, tmp_path: Path) -> None:
    from prefect import flow
    from prefect.flow_runs import resume_flow_run
    from prefect.runtime import flow_run

    from flows.tasks import await_approval

    project, run_id_file = tmp_path / "p", tmp_path / "run-id"
    model = _pending(project, timeout_s=120)

    @flow
    def approval() -> str:
        run_id_file.write_text(str(flow_run.get_id()))
        return await_approval(str(project), model).status

    result: dict[str, str] = {}
    worker, run_id = _start_paused(lambda: result.update(status=approval()), run_id_file)
    assert Registry.from_settings(Settings()).get("cand").status == "pending"
    resume_flow_run(run_id, run_input={"approve": True, "reason": "read the gate report"})  # the UI form's answer
    worker.join(timeout=60)
    assert result == {"status": "champion"}
    record = Registry.from_settings(Settings()).get("cand")
    assert record.status == "champion" and "approved: read the gate report" in record.events[-1]["reason"]


def test_cli_approval_from_another_process_resumes_the_paused_run(prefect_api: None, settings_env: Path, tmp_path: Path) -> None:
    """The reviewer answers with `llmops models approve` in a separate process: the registry records the
    verdict and the paused flow run (found through the gate evidence's flow_run_id) resumes and ends."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_API_URL

    from flows.tasks import await_approval

    project, run_id_file = tmp_path / "p", tmp_path / "run-id"
    _pending(project, timeout_s=120)

    @flow
    def approval() -> str:
        run_id = str(flow_run.get_id())
        registry = Registry.from_settings(Settings())  # as record_model does: the gate evidence names this run
        model = registry.set_status("cand", "pending", evidence={"flow_run_id": run_id, "decision": "promote"})
        run_id_file.write_text(run_id)
        return await_approval(str(project), model).status

    result: dict[str, str] = {}
    worker, run_id = _start_paused(lambda: result.update(status=approval()), run_id_file)
    cli = Path(sys.executable).with_name("llmops")
    env = os.environ | {"PREFECT_API_URL": str(PREFECT_API_URL.value())}
    done = subprocess.run(
        [str(cli), "models", "approve", "cand", "--reason", "checked the gate report"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "cand is now champion" in done.stdout and f"resumed flow run {run_id}" in done.stdout
    worker.join(timeout=60)
    assert result == {"status": "champion"}
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(run_id).state.is_completed()
    record = Registry.from_settings(Settings()).get("cand")
    assert record.status == "champion" and record.events[-1]["reason"] == "approved: checked the gate report"
    assert Registry.from_settings(Settings()).champion().model_id == "cand"


def test_unanswered_pause_leaves_the_model_pending(prefect_api: None, settings_env: Path, tmp_path: Path) -> None:
    from prefect import flow

    from flows.tasks import await_approval

    project = tmp_path / "p"
    model = _pending(project, timeout_s=1)

    @flow
    def approval() -> str:
        return await_approval(str(project), model).status

    assert approval() == "pending"
    assert Registry.from_settings(Settings()).champion() is None


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_LOGGING_LEVEL", "WARNING")
