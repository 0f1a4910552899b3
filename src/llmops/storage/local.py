"""Local filesystem store. Writes are atomic (temp file + rename) so readers never see half a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from llmops.errors import StorageError


class LocalStore:
    """Paths on the local filesystem (``file://`` prefixes are accepted)."""

    @staticmethod
    def _path(uri: str) -> Path:
        return Path(uri.removeprefix("file://"))

    def read_bytes(self, uri: str) -> bytes:
        path = self._path(uri)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise StorageError(f"{path} does not exist: check the path in params.yaml") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc

    def write_bytes(self, uri: str, data: bytes) -> None:
        path = self._path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)  # mkstemp creates 0600
            os.replace(tmp, path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise StorageError(f"cannot write {path}: {exc}") from exc

    def exists(self, uri: str) -> bool:
        return self._path(uri).exists()

    def list(self, prefix: str) -> list[str]:
        root = self._path(prefix)
        if root.is_file():
            return [str(root)]
        if not root.exists():
            return []
        return sorted(str(p) for p in root.rglob("*") if p.is_file())
