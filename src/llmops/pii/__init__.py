"""PII detection (Presidio framework + our fast rules + spaCy NER), pseudonymisation, vault, leak scan
and evaluation.

>>> from llmops.pii.redact import Redactor
>>> redactor = Redactor(RedactParams())
>>> redactor.redact_texts(["Mail me at jane@example.com"])
['Mail me at <EMAIL_ADDRESS_1>']

Importing the package imports none of its modules: any ``llmops.pii.<module>`` import runs this file first,
so re-exports here would make every such import (and each DVC stage that makes one) depend on them all.
"""
