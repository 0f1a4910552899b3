"""spaCy and Presidio load without torch and transformers, detection still works, and the two stay importable."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from llmops.pii import libraries

FRESH_PROCESS = """
import sys
from llmops.config import RedactParams
from llmops.pii.redact import Redactor

spans = Redactor(RedactParams(workers=1)).analyze(["Call John Smith on 415-555-0132 in Springfield"])[0]
assert {s.entity_type for s in spans} == {"PERSON", "PHONE_NUMBER", "LOCATION"}, spans
assert "torch" not in sys.modules and "transformers" not in sys.modules, "a deep-learning back end was imported"
import torch, transformers  # still importable afterwards (the embedder, the tokenizer)
from thinc.api import get_current_ops
print(type(get_current_ops()).__name__)
"""


def test_a_detecting_process_does_not_import_torch_or_transformers_and_can_later() -> None:
    out = subprocess.run([sys.executable, "-c", FRESH_PROCESS], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "NumpyOps"  # spaCy runs on thinc's numpy ops, as it did with torch installed


def test_backends_are_marked_absent_only_while_importing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(libraries, "UNUSED_BACKENDS", ("llmops_absent_backend",))
    monkeypatch.setattr(libraries, "_alone", lambda: True)  # pytest may hold threads of earlier tests
    with libraries._without_backends():
        assert "llmops_absent_backend" in sys.modules and sys.modules["llmops_absent_backend"] is None
        with pytest.raises(ImportError):
            import llmops_absent_backend  # type: ignore[import-not-found]  # noqa: F401
    assert "llmops_absent_backend" not in sys.modules


def test_nothing_is_blocked_while_another_thread_could_be_importing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(libraries, "UNUSED_BACKENDS", ("llmops_absent_backend",))
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not libraries._alone()
        with libraries._without_backends():
            assert "llmops_absent_backend" not in sys.modules
    finally:
        stop.set()
        other.join()


def test_nothing_is_blocked_where_a_spacy_pipeline_on_transformers_could_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(libraries, "UNUSED_BACKENDS", ("llmops_absent_backend",))
    monkeypatch.setattr(libraries, "_alone", lambda: True)
    monkeypatch.setattr(libraries, "TRANSFORMER_PIPELINES", ("json",))  # stands for spacy_transformers: installed
    with libraries._without_backends():
        assert "llmops_absent_backend" not in sys.modules
