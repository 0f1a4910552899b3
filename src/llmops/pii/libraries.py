"""spaCy and Presidio, imported without the deep-learning back ends that detection never calls.

Presidio's package imports its optional Hugging Face recognizers (``transformers``), and spaCy's ``thinc``
imports ``torch`` when it is installed: ~3.8 CPU s in every process that detects personal data (the redact
stage and each of its workers, the training set's leak screen), more than detecting a night's new
conversations costs. Detection here is our rules plus a spaCy pipeline on thinc's numpy ops; both packages
import those back ends inside ``try/except ImportError`` and run without them. So the first import of spaCy
and Presidio in a process marks the two absent (unless already imported), then unmarks them: a later
``import torch`` (the embedder) works as usual, but thinc and Presidio keep what they saw: no torch. So it is
done only while the process has no other thread that could import one of them meanwhile (tqdm's monitor
thread imports nothing), and not at all where a spaCy pipeline on transformers could be configured
(:data:`TRANSFORMER_PIPELINES` installed).
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

UNUSED_BACKENDS = ("torch", "transformers")


# spaCy pipelines on transformers (en_core_web_trf) need torch through thinc: with one of these installed,
# nothing is blocked.
TRANSFORMER_PIPELINES = ("spacy_transformers", "spacy_curated_transformers")


def _alone() -> bool:
    return all(t is threading.current_thread() or type(t).__name__ == "TMonitor" for t in threading.enumerate())


def _may_block() -> bool:
    return _alone() and not any(importlib.util.find_spec(name) for name in TRANSFORMER_PIPELINES)


@contextmanager
def _without_backends() -> Iterator[None]:
    blocked = [name for name in UNUSED_BACKENDS if name not in sys.modules] if _may_block() else []
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # the import system's "absent" marker
    try:
        yield
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


@cache
def load_detection_libraries() -> None:
    """Import Presidio (analyzer, anonymizer) and spaCy once per process, without :data:`UNUSED_BACKENDS`."""
    with _without_backends():
        import presidio_analyzer  # noqa: F401  (imports spaCy)
        import presidio_anonymizer  # noqa: F401


@cache
def stop_words() -> frozenset[str]:
    """spaCy's English stop words (spaCy imported as :func:`load_detection_libraries` does)."""
    with _without_backends():
        from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)
