"""S3 (or any S3-compatible endpoint: MinIO, moto) through boto3.

Credentials come from boto3's usual chain (env vars, ~/.aws, instance roles); only the endpoint and
region are configured here (``LLMOPS_S3_ENDPOINT_URL``, ``LLMOPS_S3_REGION``).
"""

from __future__ import annotations

from typing import Any

from llmops.errors import StorageError


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b")``."""
    if not uri.startswith("s3://"):
        raise StorageError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise StorageError(f"s3 URI without bucket: {uri!r}")
    return bucket, key


class S3Store:
    """Objects in S3 addressed as ``s3://bucket/key``."""

    def __init__(self, *, endpoint_url: str | None = None, region: str | None = None, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
        self._s3 = client

    def _call(self, what: str, uri: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            raise StorageError(f"S3 {what} {uri} failed ({code}): {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 {what} {uri} failed: {exc}. Check LLMOPS_S3_ENDPOINT_URL and AWS credentials") from exc

    def read_bytes(self, uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        body = self._call("read", uri, self._s3.get_object, Bucket=bucket, Key=key)["Body"]
        data: bytes = body.read()
        return data

    def write_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = split_s3_uri(uri)
        self._call("write", uri, self._s3.put_object, Bucket=bucket, Key=key, Body=data)

    def exists(self, uri: str) -> bool:
        from botocore.exceptions import ClientError

        bucket, key = split_s3_uri(uri)
        try:
            self._s3.head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise StorageError(f"S3 head {uri} failed: {exc}") from exc

    def list(self, prefix: str) -> list[str]:
        bucket, key = split_s3_uri(prefix)
        paginator = self._s3.get_paginator("list_objects_v2")
        out: list[str] = []
        for page in self._call("list", prefix, lambda: list(paginator.paginate(Bucket=bucket, Prefix=key))):
            out.extend(f"s3://{bucket}/{obj['Key']}" for obj in page.get("Contents", []))
        return sorted(out)
