"""Evaluators: retrieval quality and answer quality, combined into ``metrics.json``.

Modules: ``retrieval`` (``retrieval_metrics``), ``answers`` (``token_f1``), ``suite``, ``gate``, ...

Importing the package imports none of its modules: any ``llmops.evaluation.<module>`` import runs this file first,
so re-exports here would make every such import (and each DVC stage that makes one) depend on them all.
"""
