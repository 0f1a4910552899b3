"""Production feedback: the generation log (append-only partitions), ingestion since a watermark,
and curation into the next training set.

Modules: ``log`` (``GenerationLog``, ``FeedbackUpdate``, ``collect_new``), ``ingest``, ``curate``
(``curate_feedback``, ``join_feedback``), ``screen``.

Importing the package imports none of its modules: any ``llmops.feedback.<module>`` import runs this file first,
so re-exports here would make every such import (and each DVC stage that makes one) depend on them all.
"""
