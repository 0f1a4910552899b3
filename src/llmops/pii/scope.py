"""What redaction does across one scope (a conversation, a feedback event) rather than one text.

* :func:`spread_values`: a value detected in any text of the scope is redacted in every text of it, in
  any case ("Maria Gonzalez" in the customer's turn -> "thanks maria" in the agent's), and a detected
  name's words (first name, surname) on their own too.
* :func:`metadata_texts` / :func:`rebuild_metadata`: metadata values go through the same detector
  (a key that names a kind of personal data, such as ``customer_email``, marks its whole value as that
  type); keys outside ``redact.metadata_allow`` are dropped from the output but still feed the spread.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from llmops.pii.libraries import stop_words
from llmops.pii.spans import Span, resolve_overlaps

SPREAD_SCORE = 0.85  # a repeat of a detected value: below checksummed rules, above NER
_MIN_VALUE = 3  # shorter values ("Al", "NY") are not spread: too many innocent matches
_WORDS = re.compile(r"[^\W\d_]{3,}")
# Metadata keys that say what their value is.
_KEY_HINTS = [
    (re.compile(r"e-?mail", re.IGNORECASE), "EMAIL_ADDRESS"),
    (re.compile(r"phone|mobile|msisdn|\btel", re.IGNORECASE), "PHONE_NUMBER"),
    (re.compile(r"address|street", re.IGNORECASE), "STREET_ADDRESS"),
    (re.compile(r"ssn|social", re.IGNORECASE), "US_SSN"),
    (re.compile(r"iban", re.IGNORECASE), "IBAN_CODE"),
    (re.compile(r"card_?(?:number|no|num)|\bpan\b|cc_?num", re.IGNORECASE), "CREDIT_CARD"),
    (re.compile(r"birth|dob", re.IGNORECASE), "DATE_OF_BIRTH"),
    (re.compile(r"name", re.IGNORECASE), "PERSON"),
]


def _not_name_words() -> frozenset[str]:
    stopwords = stop_words()

    from llmops.pii.rules import NOT_NAMES

    return frozenset(stopwords) | NOT_NAMES


def _canon(value: str) -> str:
    return " ".join(value.split()).casefold()


def spread_values(texts: Sequence[str], spans: Sequence[Sequence[Span]], entities: Sequence[str]) -> list[list[Span]]:
    """``spans`` per text plus a span for every other mention, in any text of the scope, of a value
    detected in one of them (and of each word of a detected name)."""
    found: dict[str, str] = {}
    skip: frozenset[str] | None = None
    for text, found_spans in zip(texts, spans, strict=True):
        for s in resolve_overlaps(found_spans):
            if s.entity_type not in entities:
                continue
            value = _canon(text[s.start : s.end])
            skip = skip if skip is not None else _not_name_words()
            if len(value) >= _MIN_VALUE and not value.startswith("<") and value not in skip:
                found.setdefault(value, s.entity_type)
            if s.entity_type == "PERSON":
                for word in _WORDS.findall(value):
                    if word not in skip:
                        found.setdefault(word, "PERSON")
    if not found:
        return [list(s) for s in spans]
    alternatives = sorted(found, key=len, reverse=True)
    pattern = re.compile(
        r"(?<!\w)(?:" + "|".join(re.escape(v).replace(r"\ ", r"\s+") for v in alternatives) + r")(?!\w)", re.IGNORECASE
    )
    out = []
    for text, found_spans in zip(texts, spans, strict=True):
        extra = [
            Span(found[_canon(m.group(0))], m.start(), m.end(), SPREAD_SCORE)
            for m in pattern.finditer(text)
            if _canon(m.group(0)) in found
        ]
        out.append([*found_spans, *extra])
    return out


_NOT_PERSONAL = re.compile(r"product|company|brand|file|org|app|channel|intent|category|host|domain|type", re.IGNORECASE)


def key_hint(key: str) -> str | None:
    """The entity type a metadata key names (``customer_email`` -> EMAIL_ADDRESS), if any."""
    if _NOT_PERSONAL.search(key):
        return None
    return next((entity for pattern, entity in _KEY_HINTS if pattern.search(key)), None)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, (*path, i))]
    if isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
        return [(path, value)]
    return []


MetadataSlot = tuple[str, tuple[Any, ...], Any]  # (key, path inside its value, original leaf)


def metadata_texts(metadata: dict[str, Any]) -> tuple[list[str], list[str | None], list[MetadataSlot]]:
    """Texts to detect in (every string or number leaf of every key), the entity type each key names,
    and where each text goes back (:func:`rebuild_metadata`)."""
    texts: list[str] = []
    hints: list[str | None] = []
    slots: list[MetadataSlot] = []
    for key, value in metadata.items():
        hint = key_hint(str(key))
        for path, leaf in _leaves(value):
            texts.append(str(leaf))
            hints.append(hint)
            slots.append((key, path, leaf))
    return texts, hints, slots


def rebuild_metadata(
    metadata: dict[str, Any], slots: Sequence[MetadataSlot], redacted: Sequence[str], allow: Sequence[str]
) -> tuple[dict[str, Any], int]:
    """Allowed keys with their leaves redacted (a number stays a number unless it was redacted); other
    keys dropped. Returns the new metadata and how many keys were dropped."""
    out = {k: copy.deepcopy(v) for k, v in metadata.items() if k in allow}
    for (key, path, leaf), text in zip(slots, redacted, strict=True):
        if key not in out:
            continue
        new = leaf if not isinstance(leaf, str) and text == str(leaf) else text
        if not path:
            out[key] = new
            continue
        target = out[key]
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = new
    return out, sum(1 for k in metadata if k not in allow)


def whole_value_spans(texts: Sequence[str], hints: Sequence[str | None], entities: Sequence[str]) -> list[list[Span]]:
    """A span over each whole text whose metadata key names an entity type we redact."""
    wanted = set(entities)
    return [[Span(h, 0, len(t), 1.0)] if h in wanted and t.strip() else [] for t, h in zip(texts, hints, strict=True)]
