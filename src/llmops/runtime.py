"""Process set-up at the edges (CLI, stage entrypoints, tests): the one place that writes ``os.environ``.

Everything here is offline by design: no telemetry, no update checks, no model hub look-ups.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

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
