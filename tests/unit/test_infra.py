"""Invariants of the deployment files in infra/ and /.dockerignore: images pinned to released tags (never
`latest`), healthchecks on every long-running service, no workspace state in the image, state on volumes,
and a Kubernetes base job template that renders to a Job with the llmops image, settings and state volume."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
# image:tag where the tag names a release (digits), never `latest` or a floating major.
PINNED = re.compile(r"^[\w./-]+(:\d+)?[\w./-]*:(?!latest)[\w.-]*\d[\w.-]*$")


def _compose() -> dict[str, Any]:
    return yaml.safe_load((INFRA / "docker-compose.yml").read_text(encoding="utf-8"))


def _k8s_docs() -> list[dict[str, Any]]:
    return [d for p in sorted((INFRA / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text(encoding="utf-8")) if d]


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return [*spec.get("containers", []), *spec.get("initContainers", [])]


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def _excluded(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; ``!pattern`` re-includes. A pattern matches a path or
    any directory above it."""
    from fnmatch import fnmatchcase

    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    out = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        if any(fnmatchcase(p, pattern.removeprefix("!")) for p in prefixes):
            out = not negate
    return out


def test_pinned_pattern() -> None:
    for good in ("postgres:16.4", "minio/minio:RELEASE.2025-04-22T22-12-26Z", "prefecthq/prefect:3.8.8-python3.11"):
        assert PINNED.match(good), good
    for bad in ("postgres", "minio/minio:latest", "chromadb/chroma", "python:slim"):
        assert not PINNED.match(bad), bad


def test_the_image_leaves_out_environments_state_git_and_every_dvc_output() -> None:
    ignored = _dockerignore()
    for path in (".venv", ".llmops", ".git", ".dvc/cache", ".dvc/tmp", ".dvc/config.local", ".env", "bench/results"):
        assert _excluded(path, ignored), path
    assert _excluded("data/some-new-output/x.jsonl", ignored)  # whatever a new stage writes under data/
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    outs = set()
    for stage in spec["stages"].values():
        for key in ("outs", "metrics", "plots"):
            for item in stage.get(key) or []:
                path = str(next(iter(item)) if isinstance(item, dict) else item)
                if "${" not in path:  # a path from params.yaml is checked below through its directory
                    outs.add(path.rstrip("/"))
    assert outs, "dvc.yaml declares no outputs?"
    missing = {o for o in outs if not _excluded(o, ignored)}
    assert not missing, f"DVC outputs that would be copied into the image: {sorted(missing)}"
    for needed in ("src/llmops/config.py", "data/sample/conversations.jsonl", "dvc.yaml", "params.yaml", "flows/nightly.py"):
        assert not _excluded(needed, ignored), needed  # the image needs the code, the config and the sample


def test_compose_images_pinned_healthchecked_and_waited_for() -> None:
    services = _compose()["services"]
    assert {"postgres", "prefect-server", "chroma", "minio", "worker", "dask-scheduler", "dask-worker"} <= set(services)
    for name, svc in services.items():
        assert PINNED.match(svc["image"]), f"{name}: image {svc['image']!r} is not pinned"
        if svc.get("restart") != "no":  # one-shot set-up jobs end; everything else is checked while it runs
            assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert cond["condition"] in {"service_healthy", "service_completed_successfully"}, (name, dep)
    # Client and server move together: the images match the versions the project installs.
    assert services["prefect-server"]["image"].split(":")[1].startswith(importlib.metadata.version("prefect") + "-")
    assert services["chroma"]["image"].endswith(":" + importlib.metadata.version("chromadb"))
    assert services["worker"]["environment"]["LLMOPS_HOME"] == "/state"
    assert "state:/state" in services["worker"]["volumes"] and "state:/state" in services["dask-worker"]["volumes"]


def test_worker_image_pinned_pulls_before_work_and_checks_health() -> None:
    dockerfile = (INFRA / "worker.Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"^FROM (\S+)", dockerfile, re.M)
    assert base and PINNED.match(base.group(1)) and re.search(r":\d+\.\d+\.\d+", base.group(1))
    assert "HEALTHCHECK" in dockerfile and "worker-entrypoint.sh" in dockerfile and "LLMOPS_HOME=/state" in dockerfile
    entrypoint = (INFRA / "worker-entrypoint.sh").read_text(encoding="utf-8")
    assert "dvc pull" in entrypoint and 'exec "$@"' in entrypoint
    assert entrypoint.index("configure_remote") < entrypoint.index("cache dir")  # config.local is rewritten first


def test_kubernetes_manifests() -> None:
    docs = _k8s_docs()
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {("Deployment", "llmops-worker"), ("ConfigMap", "llmops-config"), ("Secret", "llmops-secrets")} <= kinds
    assert ("PersistentVolumeClaim", "llmops-state") in kinds and ("Role", "llmops-worker") in kinds
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert config["LLMOPS_HOME"] == "/state" and config["LLMOPS_DASK_ADDRESS"].startswith("tcp://")
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        for c in _containers(doc):
            assert PINNED.match(c["image"]), f"{doc['metadata']['name']}: {c['image']}"
            assert c.get("livenessProbe") or c.get("readinessProbe"), doc["metadata"]["name"]
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for d in docs
        if d["kind"] == "Deployment"
        for v in d["spec"]["template"]["spec"].get("volumes", [])
    }
    assert claims == {"llmops-state"}


def test_base_job_template_renders_a_job_with_image_settings_and_state() -> None:
    from prefect.utilities.templating import apply_values

    template = json.loads((INFRA / "k8s/base-job-template.json").read_text(encoding="utf-8"))
    props = template["variables"]["properties"]
    placeholders = set(re.findall(r"{{\s*(\w+)\s*}}", json.dumps(template["job_configuration"])))
    assert placeholders <= set(props), placeholders - set(props)  # every placeholder is a declared variable
    values = {k: v["default"] for k, v in props.items() if "default" in v} | {"command": "prefect flow-run execute", "name": "r"}
    job = apply_values(template["job_configuration"], values)["job_manifest"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert PINNED.match(container["image"]) and container["args"] == "prefect flow-run execute"
    assert {"configMapRef": {"name": "llmops-config"}} in container["envFrom"]
    assert {"secretRef": {"name": "llmops-secrets"}} in container["envFrom"]
    assert container["volumeMounts"] == [{"name": "state", "mountPath": "/state"}]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "llmops-state"
    assert "{{" not in json.dumps(job)


@pytest.mark.parametrize("name", ["prefect-docker.yaml", "prefect-k8s.yaml"])
def test_pool_deployments_mirror_the_project_ones(name: str) -> None:
    spec = yaml.safe_load((INFRA / name).read_text(encoding="utf-8"))
    project = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    assert {d["name"] for d in spec["deployments"]} == {d["name"] for d in project["deployments"]}
    ours = {d["name"]: d for d in project["deployments"]}
    for d in spec["deployments"]:  # the same schedules and triggers (drift starts a retrain on every pool)
        assert d.get("schedules") == ours[d["name"]].get("schedules"), d["name"]
        assert d.get("triggers") == ours[d["name"]].get("triggers"), d["name"]
    assert spec["prefect-version"] == importlib.metadata.version("prefect")
    for d in spec["deployments"]:
        path, func = d["entrypoint"].split(":")
        assert re.search(rf"^(async )?def {func}\(", (ROOT / path).read_text(encoding="utf-8"), re.M), d["entrypoint"]
        assert PINNED.match(d["work_pool"]["job_variables"]["image"])
    assert spec["pull"] == [{"prefect.deployments.steps.set_working_directory": {"directory": "/app"}}]


def test_compose_file_is_valid_for_docker_compose(tmp_path: Path) -> None:
    """`docker compose config` (v2) when installed; else `docker-compose config` (v1, which lacks the
    top-level `name` key of v2: checked without it)."""
    v2 = shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    if v2:
        cmd = ["docker", "compose", "-f", str(INFRA / "docker-compose.yml"), "--profile", "docker-pool", "config", "-q"]
    elif shutil.which("docker-compose"):
        spec = _compose()
        spec.pop("name")
        copy = INFRA / f".compose-check-{tmp_path.name}.yml"  # beside the original: `build.context: ..` resolves the same
        copy.write_text(yaml.safe_dump(spec), encoding="utf-8")
        cmd = ["docker-compose", "-f", str(copy), "--profile", "docker-pool", "config", "-q"]
    else:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally:
        if not v2:
            copy.unlink(missing_ok=True)
    assert result.returncode == 0, result.stdout + result.stderr
