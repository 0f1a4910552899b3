"""Stages DVC cannot see are stale: remote sources, new lines in the generation log, a missing index."""

from __future__ import annotations

import json
from pathlib import Path

from llmops import workspace as ws
from llmops.config import Params, Settings
from llmops.storage import is_remote


def forced_stages(params: Params, settings: Settings, project_dir: Path) -> set[str]:
    """Stages DVC cannot see are stale: remote sources (S3 objects), new lines in the generation log,
    and an index missing from this Chroma."""
    from llmops.feedback.log import has_new_data, load_watermark

    forced = set()
    if has_new_data(settings.path("generation-log"), load_watermark(settings.path("feedback", "watermark.json"))):
        forced.add("feedback")
    if any(is_remote(getattr(params.ingest, k)) for k in ws.KINDS):
        forced.add("ingest")
    if (project_dir / ws.INDEX_MANIFEST).exists() and not index_in_sync(params, settings, project_dir):
        forced.add("index")
    return forced


def index_in_sync(params: Params, settings: Settings, project_dir: Path) -> bool:
    """Does the live Chroma collection hold exactly the chunks of the index manifest?"""
    from llmops.errors import IndexStateError
    from llmops.index.store import chroma_client
    from llmops.index.versions import serving_collection

    with (project_dir / ws.INDEX_MANIFEST).open(encoding="utf-8") as fh:
        wanted = {json.loads(line)["chunk_id"] for line in fh}
    try:
        collection = serving_collection(chroma_client(settings), params.index.collection)
    except IndexStateError:
        return False
    if collection is None:
        return False
    return collection.count() == len(wanted) and set(collection.get(include=[])["ids"]) == wanted
