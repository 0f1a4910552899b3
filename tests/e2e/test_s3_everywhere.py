"""Every S3 client of a run on one custom endpoint (a real HTTP S3 server: moto on loopback): ingest from
``s3://``, the DVC remote, the model registry and the run history; a second run skips every stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # two tiny nightly runs on 2 shared cores

BUCKET, RAW = "llmops-e2e-state", "llmops-e2e-raw"


def test_nightly_on_s3_with_a_custom_endpoint_then_skips(
    workspace: Path, prefect_api: None, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from flows.nightly import nightly
    from llmops.config import Settings, apply_overrides
    from llmops.finetune.registry import Registry
    from llmops.monitoring.history import History

    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    for key, value in creds.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # Set here (restored after the test) so the run's setdefault of the same variable leaks nothing into other tests.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    env = {
        "LLMOPS_S3_ENDPOINT_URL": s3_endpoint,
        "LLMOPS_S3_REGION": "us-east-1",
        "LLMOPS_DVC_REMOTE_URL": f"s3://{BUCKET}/dvc",
        "LLMOPS_REGISTRY_URI": f"s3://{BUCKET}/registry",
        "LLMOPS_HISTORY_URI": f"s3://{BUCKET}/history",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    for bucket in (BUCKET, RAW):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=RAW, Key="in/conversations.jsonl", Body=(workspace / "data/sample/conversations.jsonl").read_bytes())
    apply_overrides(workspace / "params.yaml", {"ingest.conversations": f"s3://{RAW}/in/conversations.jsonl"})

    state = nightly(project_dir=str(workspace), return_state=True)
    assert state.is_completed(), state
    first = state.result()
    ran = first.ran()
    assert "ingest" in ran and "finetune" in ran

    # Ingest read the object on the endpoint: DVC hashed the s3:// dependency there (it is in the lock).
    lock = (workspace / "dvc.lock").read_text(encoding="utf-8")
    assert f"s3://{RAW}/in/conversations.jsonl" in lock
    ingest = json.loads((workspace / "metrics/ingest.json").read_text(encoding="utf-8"))
    assert ingest["conversations"]["out"] > 0

    def keys(prefix: str) -> list[str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    assert first.pushed_files and keys("dvc/")  # the DVC remote is on the endpoint
    assert "registry/registry.json" in keys("registry/")  # so is the registry, with the models' artifacts
    registry = Registry.from_settings(Settings())
    assert registry.champion() is not None and any(m.artifact_path.startswith(f"s3://{BUCKET}/") for m in registry.models())
    assert [k for k in keys("history/runs/") if k.endswith(".json")]  # and the run history
    assert len(History.from_settings(Settings()).entries()) == 1
    # Personal data before the redaction boundary never reaches the remote (push: false outputs).
    remote_files = {k.rsplit("/", 1)[-1] for k in keys("dvc/")}
    assert remote_files  # content-addressed: checked by hash below
    raw_hash = _out_hash(lock, "data/raw")
    assert raw_hash and not any(raw_hash.removesuffix(".dir")[2:] in k for k in keys("dvc/"))

    again = nightly(project_dir=str(workspace), return_state=True)
    assert again.is_completed(), again
    second = again.result()
    # Unchanged data: every stage from redaction on is skipped. Ingest of a remote source always runs (DVC
    # cannot see an S3 object change); clean may follow it because the raw partitions' manifest records the
    # ingest run's own counts (reused/processed), which differ between a first and a later run.
    assert second.ran() in (["ingest"], ["ingest", "clean"])
    after = (workspace / "dvc.lock").read_text(encoding="utf-8")
    for out in ("data/clean", "data/redacted", "data/index/manifest.jsonl", "data/trainset", "models/adapter"):
        assert _out_hash(after, out) == _out_hash(lock, out) != "", out
    assert len(History.from_settings(Settings()).entries()) == 2


def _out_hash(lock: str, path: str) -> str:
    import yaml

    for stage in (yaml.safe_load(lock) or {}).get("stages", {}).values():
        for out in stage.get("outs", []):
            if out.get("path") == path:
                return str(out.get("md5", ""))
    return ""
