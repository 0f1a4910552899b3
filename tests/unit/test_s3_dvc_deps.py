"""An ``s3://`` stage dependency on a custom endpoint (MinIO, moto): DVC hashes it with its own S3 client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmops.config import Settings
from llmops.runtime import s3_environment


def test_s3_environment_only_when_configured() -> None:
    assert s3_environment(Settings(s3_endpoint_url=None, s3_region=None)) == {}
    assert s3_environment(Settings(s3_endpoint_url="http://127.0.0.1:9000", s3_region="eu-west-1")) == {
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }


def test_dvc_hashes_an_s3_dep_on_the_configured_endpoint(tmp_path: Path, s3_endpoint: str) -> None:
    import boto3

    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    client = boto3.client(
        "s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    client.create_bucket(Bucket="llmops-dvc-dep")
    client.put_object(Bucket="llmops-dvc-dep", Key="conversations.jsonl", Body=b'{"x": 1}\n')
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  ingest:\n    cmd: echo ok > out.txt\n    deps: ['s3://llmops-dvc-dep/conversations.jsonl']\n"
        "    outs: [out.txt]\n",
        encoding="utf-8",
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | creds | {"DVC_NO_ANALYTICS": "1"}

    def repro(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=tmp_path, env=env, capture_output=True, text=True)

    without = repro(base)
    assert without.returncode != 0 and "amazonaws.com" in without.stdout + without.stderr
    with_endpoint = repro(base | s3_environment(Settings(s3_endpoint_url=s3_endpoint)))
    assert with_endpoint.returncode == 0, with_endpoint.stdout + with_endpoint.stderr
    assert "s3://llmops-dvc-dep/conversations.jsonl" in (tmp_path / "dvc.lock").read_text(encoding="utf-8")


def test_prepare_environment_never_overrides_the_users_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from llmops.runtime import prepare_environment

    for name in ("AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(name, f"users-own-{name}")
    for key in ("PREFECT_HOME", "LLMOPS_HOME", "PATH", *(k for k in os.environ if k.startswith(("HF_", "DVC_", "PREFECT_")))):
        if key in os.environ:
            monkeypatch.setenv(key, os.environ[key])  # restored after the test
    prepare_environment(Settings(home=tmp_path, s3_endpoint_url="http://127.0.0.1:1", s3_region="eu-west-1"))
    assert os.environ["AWS_ENDPOINT_URL_S3"] == "users-own-AWS_ENDPOINT_URL_S3"
    assert os.environ["AWS_DEFAULT_REGION"] == "users-own-AWS_DEFAULT_REGION"
