"""Local store, and S3 through boto3 against a real HTTP S3 endpoint (moto server on loopback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops.data.ingest import ingest
from llmops.errors import StorageError
from llmops.records import Document
from llmops.storage import LocalStore, S3Store, store_for


@pytest.fixture()
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = store_for("s3://llmops-test/x", endpoint_url=s3_endpoint, region="us-east-1")
    assert isinstance(store, S3Store)
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    if "llmops-test" not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket="llmops-test")
    return store


def test_local_roundtrip_and_listing(tmp_path: Path) -> None:
    store = LocalStore()
    store.write_bytes(str(tmp_path / "a/b.jsonl"), b"x")
    assert store.read_bytes(str(tmp_path / "a/b.jsonl")) == b"x"
    assert store.list(str(tmp_path / "a")) == [str(tmp_path / "a/b.jsonl")]
    with pytest.raises(StorageError, match="does not exist"):
        store.read_bytes(str(tmp_path / "missing"))


def test_s3_roundtrip_over_http(s3: S3Store) -> None:
    s3.write_bytes("s3://llmops-test/raw/a.txt", b"hello")
    assert s3.read_bytes("s3://llmops-test/raw/a.txt") == b"hello"
    assert s3.exists("s3://llmops-test/raw/a.txt")
    assert not s3.exists("s3://llmops-test/raw/none.txt")
    assert s3.list("s3://llmops-test/raw/") == ["s3://llmops-test/raw/a.txt"]
    with pytest.raises(StorageError, match="NoSuchKey"):
        s3.read_bytes("s3://llmops-test/raw/none.txt")


def test_ingest_from_s3_prefix_quarantines_bad_lines(s3: S3Store) -> None:
    good = json.dumps({"doc_id": "d1", "text": "Renew your licence online."}).encode()
    s3.write_bytes("s3://llmops-test/kb/part-0.jsonl", good + b"\n{broken\n")
    s3.write_bytes("s3://llmops-test/kb/part-1.jsonl", json.dumps({"doc_id": "d2", "text": "x"}).encode())
    s3.write_bytes("s3://llmops-test/kb/README.txt", b"not data")
    result = ingest("s3://llmops-test/kb/", Document, s3)
    assert [d.doc_id for d in result.records] == ["d1", "d2"]
    assert result.counts() == {"in": 3, "out": 2, "quarantined": 1}
    assert result.quarantined[0].source == "s3://llmops-test/kb/part-0.jsonl"


def test_registry_and_history_from_settings_reach_the_configured_endpoint(s3: S3Store, s3_endpoint: str, tmp_path: Path) -> None:
    """With only the settings (``LLMOPS_S3_ENDPOINT_URL``, ``LLMOPS_REGISTRY_URI``, ``LLMOPS_HISTORY_URI``) the
    registry (record + artifact) and the run history live on that endpoint; without the endpoint, boto3 would
    go to AWS, which these credentials cannot reach."""
    from llmops.config import Settings
    from llmops.finetune.registry import ModelRecord, Registry
    from llmops.monitoring.history import History, HistoryEntry

    settings = Settings(
        home=tmp_path,
        s3_endpoint_url=s3_endpoint,
        s3_region="us-east-1",
        registry_uri="s3://llmops-test/settings/registry",
        history_uri="s3://llmops-test/settings/history",
    )
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    registry = Registry.from_settings(settings)
    record = registry.register(ModelRecord(model_id="m1", base_model="base", data_rev="r1"), adapter)
    assert record.artifact_path == "s3://llmops-test/settings/registry/models/m1"
    assert s3.exists("s3://llmops-test/settings/registry/registry.json")
    assert s3.read_bytes("s3://llmops-test/settings/registry/models/m1/adapter_config.json") == b"{}"
    assert Registry.from_settings(settings).get("m1") is not None
    fetched = registry.fetch_artifact("m1", tmp_path / "fetched")
    assert (fetched / "adapter_config.json").read_text(encoding="utf-8") == "{}"

    history = History.from_settings(settings)
    history.append(HistoryEntry(run_id="run-1", flow="nightly", ts="2026-01-01T00:00:00", metrics={"answers.token_f1": 0.5}))
    assert s3.list("s3://llmops-test/settings/history/runs/") and len(History.from_settings(settings).entries()) == 1
    assert History.from_settings(settings, "s3://llmops-test/other").uri == "s3://llmops-test/other"
