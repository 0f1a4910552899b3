"""Drift monitoring (the only subpackage that imports evidently).

Modules: ``drift`` (``drift_report``), ``monitor``, ``quality``, ``history``, ``trend``, ``triggers``.

Importing the package imports none of its modules: any ``llmops.monitoring.<module>`` import runs this file first,
so re-exports here would make every such import (and each DVC stage that makes one) depend on them all.
"""
