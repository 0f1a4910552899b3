"""Ingestion, contract validation, cleaning, de-duplication and quarantine.

Modules: ``ingest`` (sources -> raw, contracts), ``clean``, ``incremental`` (day partitions), ``quarantine``,
``redaction`` (the redact stage over partitions), ``purge``, ``sources``.

Importing the package imports none of its modules: any ``llmops.data.<module>`` import runs this file first,
so re-exports here would make every such import (and each DVC stage that makes one) depend on them all.
"""
