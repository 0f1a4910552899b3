"""PII detection (Presidio framework + our fast rules + spaCy NER), pseudonymisation, vault, leak scan
and evaluation.

>>> redactor = Redactor(RedactParams())
>>> redactor.redact_texts(["Mail me at jane@example.com"])
['Mail me at <EMAIL_ADDRESS_1>']
"""

from __future__ import annotations

from llmops.pii.redact import Redactor, RedactStats

__all__ = ["RedactStats", "Redactor"]
