"""DVC keeps the boundary: a real `dvc repro` + `dvc push` on a tiny project with the project's out
declarations sends nothing from raw/clean/quarantine to the remote; `llmops pii purge` deletes them and
their cache objects, but not an object a post-boundary output shares."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from llmops.cli import app
from llmops.data.purge import protect_private, purge_private

SECRET = "maria.canary@example.com"
ROOT = Path(__file__).resolve().parents[2]

WRITE = (
    "import pathlib as p\n"
    "for d in ('raw','clean','quarantine','redacted'): p.Path('data',d).mkdir(parents=True, exist_ok=True)\n"
    f"p.Path('data/raw/c.jsonl').write_text('{SECRET} raw\\n')\n"
    f"p.Path('data/quarantine/c.jsonl').write_text('{SECRET} held\\n')\n"
    "p.Path('data/clean/docs.jsonl').write_text('public page\\n')\n"
    f"p.Path('data/clean/c.jsonl').write_text('{SECRET} clean\\n')\n"
    "p.Path('data/redacted/docs.jsonl').write_text('public page\\n')\n"
    "p.Path('data/redacted/c.jsonl').write_text('<EMAIL_ADDRESS_1>\\n')\n"
)


def _project_outs() -> dict[str, bool]:
    """The push flag of every ingest/clean/redact out in the project's dvc.yaml."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    flags = {}
    for st in ("ingest", "clean", "redact"):
        for out in stages[st]["outs"]:
            path, opts = next(iter(out.items())) if isinstance(out, dict) else (out, {})
            flags[path] = opts.get("push", True)
    return flags


def test_project_declares_every_pre_boundary_out_unpushed() -> None:
    assert _project_outs() == {
        "data/raw": False,
        "data/quarantine": False,
        "data/clean": False,
        "data/redacted": True,
        "data/redact-quarantine": False,
    }


def _project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A DVC project with one stage writing raw/quarantine/clean (unpushed) and redacted outputs, and a remote."""
    proj, remote = tmp_path / "proj", tmp_path / "remote"
    proj.mkdir()
    monkeypatch.chdir(proj)  # DVC resolves stage paths against the working directory
    (proj / "write.py").write_text(WRITE)
    flags = _project_outs()
    outs = [{p: {"push": flags[p]}} for p in ("data/raw", "data/quarantine", "data/clean")] + ["data/redacted"]
    (proj / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"ingest": {"cmd": "python write.py", "outs": outs}}}))
    from dvc.repo import Repo

    Repo.init(str(proj), no_scm=True).close()
    with Repo(str(proj)) as repo:
        with repo.config.edit() as conf:
            conf["remote"]["r"] = {"url": str(remote)}
            conf["core"]["remote"] = "r"
    return proj, remote


def test_push_sends_nothing_private_and_purge_removes_it(
    tmp_path: Path, settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dvc.repo import Repo

    proj, remote = _project(tmp_path, monkeypatch)
    with Repo(str(proj)) as repo:
        repo.reproduce()
        assert repo.push() > 0

    pushed = [p for p in remote.rglob("*") if p.is_file()]
    assert pushed, "the redacted output was not pushed"
    assert not [p for p in pushed if SECRET.encode() in p.read_bytes()]
    cache = proj / ".dvc/cache"
    assert [p for p in cache.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]  # local only

    result = CliRunner().invoke(app, ["pii", "purge", "-C", str(proj), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "data/raw" in result.output and (proj / "data/raw").exists()  # dry run keeps everything

    report = purge_private(proj)
    assert set(report.paths) == {"data/raw", "data/quarantine", "data/clean"} and report.shared == 1
    assert not [p for p in cache.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert not (proj / "data/raw").exists() and (proj / "data/redacted/docs.jsonl").exists()
    (proj / "data/redacted/docs.jsonl").unlink()
    with Repo(str(proj)) as repo:  # the post-boundary output still checks out from the cache (shared object kept)
        repo.checkout(targets=["data/redacted"])
    assert (proj / "data/redacted/docs.jsonl").read_text() == "public page\n"


@pytest.mark.parametrize("link", ["copy", "hardlink"])  # run workspaces link outputs to the cache (hardlinks on ext4)
def test_private_outputs_and_their_cache_objects_are_owner_only_after_a_stage(
    link: str, tmp_path: Path, settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DVC commits outputs with the process umask (files 0644, objects 0444): the personal data before the
    boundary is made 0600 / 0700 / 0400; post-boundary outputs and the objects they share keep their modes."""
    import os

    from dvc.repo import Repo

    proj, _ = _project(tmp_path, monkeypatch)
    with Repo(str(proj)) as repo, repo.config.edit() as conf:
        conf["cache"]["type"] = link
    old = os.umask(0o022)
    try:
        with Repo(str(proj)) as repo:
            repo.reproduce()
    finally:
        os.umask(old)

    def mode(p: Path) -> int:
        return p.stat().st_mode & 0o777

    assert mode(proj / "data/raw/c.jsonl") & 0o044, "the fixture must start world-readable to test anything"
    assert (proj / "data/raw/c.jsonl").stat().st_nlink == (2 if link == "hardlink" else 1)
    assert protect_private(proj) > 0
    private = {0o600} if link == "copy" else {0o400}  # a hardlinked file is its cache object
    for rel in ("data/raw", "data/quarantine"):
        assert mode(proj / rel) == 0o700
        assert {mode(f) for f in (proj / rel).rglob("*") if f.is_file()} == private
    assert mode(proj / "data/clean") == 0o700 and mode(proj / "data/clean/c.jsonl") in private
    cache = proj / ".dvc/cache"
    secret = [f for f in cache.rglob("*") if f.is_file() and SECRET.encode() in f.read_bytes()]
    assert secret and {mode(f) for f in secret} == {0o400}
    shared = [f for f in cache.rglob("*") if f.is_file() and f.read_bytes() == b"public page\n"]
    assert shared and mode(shared[0]) & 0o044  # data/redacted/docs.jsonl needs it: not narrowed
    assert mode(proj / "data/redacted/c.jsonl") & 0o044 and mode(proj / "data/redacted/docs.jsonl") & 0o044
    assert protect_private(proj) == 0  # nothing left to change
