"""Object storage behind one small interface: local paths and ``s3://`` URIs (boto3).

>>> store = store_for("s3://bucket/raw/conversations.jsonl", endpoint_url="http://127.0.0.1:9000")
>>> data = store.read_bytes("s3://bucket/raw/conversations.jsonl")
"""

from __future__ import annotations

from llmops.storage.base import ObjectStore, is_remote, store_for
from llmops.storage.local import LocalStore
from llmops.storage.s3 import S3Store

__all__ = ["LocalStore", "ObjectStore", "S3Store", "is_remote", "store_for"]
