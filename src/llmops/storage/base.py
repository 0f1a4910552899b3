"""The ObjectStore protocol and the factory that picks an implementation from a URI."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class ObjectStore(Protocol):
    """Bytes in, bytes out, addressed by URI (a local path or ``s3://bucket/key``)."""

    def read_bytes(self, uri: str) -> bytes: ...

    def write_bytes(self, uri: str, data: bytes) -> None: ...

    def exists(self, uri: str) -> bool: ...

    def list(self, prefix: str) -> list[str]: ...


def is_remote(uri: str) -> bool:
    return uri.startswith("s3://")


def store_for(uri: str, *, endpoint_url: str | None = None, region: str | None = None) -> ObjectStore:
    """Return the store that serves ``uri``: :class:`S3Store` for ``s3://``, else :class:`LocalStore`."""
    if is_remote(uri):
        from llmops.storage.s3 import S3Store

        return S3Store(endpoint_url=endpoint_url, region=region)
    from llmops.storage.local import LocalStore

    return LocalStore()
