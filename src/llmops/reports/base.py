"""What every hand-off file's model shares: its JSON body, and reading it back with an error that names the file.

A hand-off model writes only the keys that were set (:meth:`HandOff.as_dict`), so each file keeps the shape it
has always had on disk, and reads through :meth:`HandOff.load`: a missing file or one that breaks the model is a
:class:`~llmops.errors.DataContractError` naming the file (and line), the field and what writes the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ValidationError

from llmops.errors import DataContractError


def first_error(exc: ValidationError, *, whole: str = "the file") -> str:
    """``field.path: message`` of a validation error's first problem (``whole`` when the record itself is wrong)."""
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc']) or whole}: {err['msg']}"


def contract_error(
    path: Path, what: str, exc: ValidationError, *, fix: str = "", line: int | None = None, whole: str = "the file"
) -> DataContractError:
    """``<path>[:line] is not a valid <what> (<field>: <message>)[: <fix>]``."""
    at = f"{path}:{line}" if line is not None else str(path)
    return DataContractError(f"{at} is not a valid {what} ({first_error(exc, whole=whole)})" + (f": {fix}" if fix else ""))


class HandOff(BaseModel):
    """Base of the models of the files one stage or flow hands to another."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON body: the keys that were set, nothing added."""
        return self.model_dump(mode="json", exclude_unset=True)

    def dump(self, path: Path) -> Path:
        """Write :meth:`as_dict` to ``path`` as indented JSON (parents made); returns ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path, *, what: str, missing: str, fix: str = "", whole: str = "the file") -> Self:
        """Validate the JSON file at ``path``; a missing one is ``<path> does not exist: <missing>``, a malformed
        one :func:`contract_error`."""
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError as exc:
            raise DataContractError(f"{path} does not exist: {missing}") from exc
        except ValidationError as exc:
            raise contract_error(path, what, exc, fix=fix, whole=whole) from exc
