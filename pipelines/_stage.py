"""What every stage entrypoint needs: params, settings and the environment, loaded once."""

from __future__ import annotations

import logging
from pathlib import Path

from llmops.config import Params, Settings, load_params
from llmops.runtime import prepare_environment


def setup(stage: str) -> tuple[Params, Settings]:
    logging.basicConfig(level=logging.INFO, format=f"[{stage}] %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a Chroma server's client logs every request at INFO
    settings = Settings()
    prepare_environment(settings)
    return load_params(Path("params.yaml")), settings
