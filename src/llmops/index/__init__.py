"""Chunking, embedders, the Chroma store and incremental refresh of the knowledge-base index.

Modules: ``chunk`` (``chunk_documents``), ``refresh`` (``refresh_index``), ``embed``, ``store``, ``hybrid``, ...

Importing the package imports none of its modules: any ``llmops.index.<module>`` import runs this file first,
so re-exports here would make every such import (and each DVC stage that makes one) depend on them all.
"""
