"""Isolated run workspaces on a two-stage DVC project: materialise, run, publish, overrides, the serial slot."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from prefect.settings import PREFECT_API_URL, temporary_settings

from llmops import isolation, versioning
from llmops.config import Settings
from llmops.errors import ConfigError
from tests.conftest import ROOT

DVC_YAML = """\
stages:
  first:
    cmd: python src/first.py
    deps: [src/first.py]
    params: [base.seed]
    outs: [out/a.txt]
  second:
    cmd: python -c "open('out/b.txt', 'w').write(open('out/a.txt').read() * 2)"
    deps: [out/a.txt]
    outs: [out/b.txt]
"""


@pytest.fixture()
def project(tmp_path: Path, settings_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "dvc.yaml").write_text(DVC_YAML)
    (proj / "params.yaml").write_text("# the one knob\nbase:\n  seed: 3  # kept comment\n")
    (proj / "out").mkdir()
    (proj / "src").mkdir()
    (proj / "src" / "lib.py").write_text("X = 1\n")
    (proj / "src" / "first.py").write_text(
        "import os, yaml\nos.makedirs('out', exist_ok=True)\n"
        "open('out/a.txt', 'w').write(str(yaml.safe_load(open('params.yaml'))['base']['seed']))\n"
    )
    (proj / ".venv").mkdir()
    (proj / ".venv" / "big.bin").write_bytes(b"0" * 1000)
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=proj, check=True)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{__import__('os').environ['PATH']}")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return proj


def _run_in_workspace(project: Path, dest: Path, overrides: dict | None = None) -> Path:
    settings = Settings()
    ws = isolation.materialise(project, dest)
    isolation.prepare_params(ws, overrides)
    versioning.configure_remote(ws, settings)
    versioning.pull(ws)
    for stage in ("first", "second"):
        versioning.repro_stage(ws, stage)
    versioning.push(ws)
    return ws


def test_materialised_workspace_holds_sources_not_environment_or_outputs(project: Path, tmp_path: Path) -> None:
    (project / "out" / "a.txt").write_text("stale")
    files = {str(p) for p in isolation.source_files(project)}
    assert {"dvc.yaml", "params.yaml", "src/lib.py"} <= files
    assert not any(f.startswith((".venv/", ".dvc/", "out/")) for f in files)
    ws = isolation.materialise(project, tmp_path / "ws")
    assert (ws / "src/lib.py").read_text() == "X = 1\n" and not (ws / ".venv").exists() and not (ws / "out/a.txt").exists()
    config = (ws / ".dvc/config").read_text()
    assert "no_scm = true" in config and str(project / ".dvc" / "cache") in config


def test_run_publishes_into_the_project_and_a_fresh_workspace_skips_everything(project: Path, tmp_path: Path) -> None:
    before = (project / "params.yaml").read_bytes()
    ws = _run_in_workspace(project, tmp_path / "run1", overrides={"base.seed": "5"})
    assert (ws / "out/b.txt").read_text() == "55"
    assert isolation.publish_lock(project, ws, ["first", "second"]) == ["first", "second"]
    assert (project / "params.yaml").read_bytes() == before  # the override was the run's only
    assert (project / "out/b.txt").read_text() == "55" and (project / "out/b.txt").stat().st_mode & 0o200
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert list(lock["stages"]) == ["first", "second"] and lock["stages"]["first"]["params"]["params.yaml"]["base.seed"] == 5

    # A second run without the override starts from the published lock: 'first' changed (seed 3), reruns.
    ws2 = isolation.materialise(project, tmp_path / "run2")
    versioning.configure_remote(ws2, Settings())
    versioning.pull(ws2)
    assert (ws2 / "out/b.txt").read_text() == "55"  # checked out from the shared cache
    assert versioning.repro_stage(ws2, "first").ran and versioning.repro_stage(ws2, "second").ran
    versioning.push(ws2)
    isolation.publish_lock(project, ws2, ["first", "second"])
    assert (project / "out/b.txt").read_text() == "33"
    # A fresh workspace with the project's lock and no cache at all (a new worker): pulled, nothing reruns.
    import shutil

    shutil.rmtree(project / ".dvc" / "cache")
    ws3 = isolation.materialise(project, tmp_path / "run3")
    versioning.configure_remote(ws3, Settings())
    assert versioning.pull(ws3) == 2  # both outputs come from the DVC remote
    assert [versioning.repro_stage(ws3, s).ran for s in ("first", "second")] == [False, False]


# A stage run in a fresh process whose root logger has a handler (as Prefect's console in a flow run) or none.
_LOGGED_RUN = """\
import logging, sys
from pathlib import Path
from llmops import versioning
if sys.argv[1] == "root":
    logging.basicConfig(stream=sys.stdout, format="ROOT %(message)s", level=logging.INFO)
versioning.repro_stage(Path(sys.argv[2]), "first", force=True)
"""


@pytest.mark.parametrize("root", ["root", "bare"])
def test_dvc_lines_come_out_once(project: Path, root: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _LOGGED_RUN, root, str(project)], capture_output=True, text=True, check=True
    ).stdout
    assert out.count("Running stage 'first'") == 1, out
    assert ("ROOT Running stage 'first'" in out) == (root == "root"), out  # the root's format where it has one


def test_publish_merges_only_the_runs_stages(project: Path, tmp_path: Path) -> None:
    ws = _run_in_workspace(project, tmp_path / "run1")
    isolation.publish_lock(project, ws, ["first", "second"])
    other = yaml.safe_load((project / "dvc.lock").read_text())
    other["stages"]["second"]["cmd"] = "published by another run"
    (project / "dvc.lock").write_text(yaml.safe_dump(other, sort_keys=False))
    ws2 = _run_in_workspace(project, tmp_path / "run2", overrides={"base.seed": "7"})
    assert isolation.publish_lock(project, ws2, ["first"]) == ["first"]
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert lock["stages"]["first"]["params"]["params.yaml"]["base.seed"] == 7
    assert lock["stages"]["second"]["cmd"] == "published by another run"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"nosuch.n": "1"}, "no section 'nosuch'"), ({"finetune.max_stepz": "1"}, "invalid")],
)
def test_bad_overrides_fail_before_anything_and_leave_params_untouched(overrides: dict, message: str, settings_env: Path) -> None:
    before = (ROOT / "params.yaml").read_bytes()
    with pytest.raises(ConfigError, match=message) as err:
        isolation.check_overrides(ROOT, overrides)
    assert "nothing was run" in str(err.value) and "llmops-params-" not in str(err.value)
    assert (ROOT / "params.yaml").read_bytes() == before


def test_good_overrides_are_parsed_without_writing(settings_env: Path) -> None:
    before = (ROOT / "params.yaml").read_bytes()
    assert isolation.check_overrides(ROOT, {"finetune.max_steps": "3"}) == {"finetune.max_steps": 3}
    assert (ROOT / "params.yaml").read_bytes() == before


@pytest.fixture
def without_prefect_server() -> Iterator[None]:
    """The flock path: the holder subprocess has no Prefect server, so this process must not use one either,
    even when an earlier test of the session left the test harness's API configured here."""
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert not PREFECT_API_URL.value()
        yield


def test_serial_slot_makes_a_second_process_wait(settings_env: Path, tmp_path: Path, without_prefect_server: None) -> None:
    holder = textwrap.dedent(
        """
        import sys, time
        from llmops.config import Settings
        from llmops.isolation import serial
        with serial(Settings(), "holder"):
            print("held", flush=True)
            time.sleep(float(sys.argv[1]))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", holder, "3"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    try:
        with isolation.serial(Settings(), "waiter") as slot:
            assert slot.waited_s is not None and slot.waited_s > 0.5  # the holder kept it for seconds
            acquired = datetime.fromisoformat(slot.acquired or "")
    finally:
        proc.communicate(timeout=30)
    assert proc.returncode == 0 and acquired <= datetime.now(UTC) and slot.released is not None
    # A holder killed with SIGKILL does not leave the slot taken.
    proc = subprocess.Popen([sys.executable, "-c", holder, "60"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    proc.kill()
    proc.communicate()
    start = time.monotonic()
    with isolation.serial(Settings(), "after a crash"):
        pass
    assert time.monotonic() - start < 5


def test_failed_run_is_recorded_with_its_stage_and_its_workspace_removed(project: Path, settings_env: Path) -> None:
    from llmops.errors import StageError
    from llmops.reports.run import RunRecord
    from llmops.runs.status import status

    settings = Settings()
    with pytest.raises(StageError):
        with isolation.isolated_run(project, settings, flow="nightly", run_id="abc123") as run:
            run.at("second")
            raise StageError("second", "boom")
    record = RunRecord.read(run.record)
    assert record.state == "failed" and record.stage == "second" and record.error and "boom" in record.error
    assert not run.workspace.exists()  # pre-redaction data never outlives the run
    info = status(project, settings)
    assert info.last_runs[0].state == "failed" and info.last_runs[0].stage == "second"
    assert "nightly-failed-in-second" in settings.path("trend.html").read_text()


def test_fresh_worker_rebuilds_unpushed_outputs_and_the_remote_never_holds_them(
    tmp_path: Path, settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`push: false` outputs (personal data before the redaction boundary) stay out of the remote, run cache
    included; a workspace on a fresh worker reruns the stage that makes them and skips what follows."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "dvc.yaml").write_text(
        "stages:\n"
        "  first:\n"
        "    cmd: python -c \"open('a.txt', 'w').write('canary@example.com')\"\n"
        "    outs:\n"
        "      - a.txt:\n"
        "          push: false\n"
        "  second:\n"
        "    cmd: python -c \"open('b.txt', 'w').write(str(len(open('a.txt').read())))\"\n"
        "    deps: [a.txt]\n"
        "    outs: [b.txt]\n"
    )
    (proj / "params.yaml").write_text("base:\n  seed: 1\n")
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=proj, check=True)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{__import__('os').environ['PATH']}")
    ws = isolation.materialise(proj, tmp_path / "run1")
    versioning.configure_remote(ws, Settings())
    assert [versioning.repro_stage(ws, s).ran for s in ("first", "second")] == [True, True]
    versioning.push(ws)
    isolation.publish_lock(proj, ws, ["first", "second"])
    remote = settings_env / "dvc-remote"
    assert any(remote.rglob("*")) and not any("canary@" in p.read_text(errors="ignore") for p in remote.rglob("*") if p.is_file())

    import shutil

    shutil.rmtree(proj / ".dvc" / "cache")  # a fresh worker: the project's lock, no cache
    ws2 = isolation.materialise(proj, tmp_path / "run2")
    versioning.configure_remote(ws2, Settings())
    assert versioning.pull(ws2) == 1 and not (ws2 / "a.txt").exists() and (ws2 / "b.txt").exists()
    assert [versioning.repro_stage(ws2, s).ran for s in ("first", "second")] == [True, False]


def test_published_outputs_before_the_boundary_are_owner_only_in_the_project(
    tmp_path: Path, settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkout that publishes a run writes the project's outputs with the umask: raw data must not be left
    readable by every local user there (the run's own workspace was protected already)."""
    import os

    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "src" / "w.py").write_text(
        "import os\nfor d in ('data/raw', 'data/redacted'): os.makedirs(d, exist_ok=True)\n"
        "open('data/raw/c.jsonl', 'w').write('maria@example.com\\n')\n"
        "open('data/redacted/c.jsonl', 'w').write('<EMAIL_ADDRESS_1>\\n')\n"
    )
    (proj / "dvc.yaml").write_text(
        "stages:\n  first:\n    cmd: python src/w.py\n    deps: [src/w.py]\n"
        "    outs: [{data/raw: {push: false}}, data/redacted]\n"
    )
    (proj / "params.yaml").write_text("base:\n  seed: 1\n")
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=proj, check=True)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    old = os.umask(0o022)
    try:
        ws = isolation.materialise(proj, tmp_path / "run")
        versioning.configure_remote(ws, Settings())
        assert versioning.repro_stage(ws, "first").ran
        isolation.publish_lock(proj, ws, ["first"])
    finally:
        os.umask(old)
    assert (proj / "data/raw/c.jsonl").read_text() == "maria@example.com\n"
    assert (proj / "data/raw").stat().st_mode & 0o777 == 0o700
    assert (proj / "data/raw/c.jsonl").stat().st_mode & 0o777 == 0o600
    assert (proj / "data/redacted/c.jsonl").stat().st_mode & 0o044  # published data keeps its modes
