"""What redaction does across one scope (a conversation, a feedback event) rather than one text.

* :func:`spread_values`: a value detected in any text of the scope is redacted in every text of it, in
  any case ("Maria Gonzalez" in the customer's turn -> "thanks maria" in the agent's), and a detected
  name's words (first name, surname) on their own too.
* :func:`answer_spans`: a customer's short reply to an agent's request for a value ("What's your postcode?" /
  "ls6 2qt") is that value when it has its shape, cue or no cue.
* :func:`metadata_texts` / :func:`rebuild_metadata`: metadata values go through the same detector
  (a key that names a kind of personal data, such as ``customer_email``, marks its whole value as that
  type); keys outside ``redact.metadata_allow`` are dropped from the output but still feed the spread.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmops.pii.libraries import stop_words
from llmops.pii.spans import Span, resolve_overlaps

SPREAD_SCORE = 0.85  # a repeat of a detected value: below checksummed rules, above NER
ANSWER_SCORE = 0.8  # a reply to an agent's request for a value: its type is the question's
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


# What an agent asks for, by the entity type the customer's reply holds (e-mail before address: "e-mail address").
# The customer's own value: "your ...", "the ... on the account", "what's the postcode" (never "our email").
_YOUR = r"(?:your|ur|the|what'?s the|what is the|and|or)\s+"  # "your full name and postcode"
_ASKS = [
    ("EMAIL_ADDRESS", re.compile(rf"{_YOUR}e-?mail", re.IGNORECASE)),
    (
        "DATE_OF_BIRTH",
        re.compile(rf"{_YOUR}(?:date of birth|birth ?date|d\.?o\.?b\b|birthday)|when (?:were|was) you born", re.IGNORECASE),
    ),
    ("ZIP_CODE", re.compile(rf"{_YOUR}(?:post ?code|postal code|zip(?: ?code)?\b|plz\b)", re.IGNORECASE)),
    (
        "PHONE_NUMBER",
        re.compile(
            rf"{_YOUR}(?:(?:mobile |cell |contact |tele)?phone\b|mobile\b|cell\b|contact number)"
            r"|\bnumber (?:to|we can|i can) (?:reach|call)",
            re.IGNORECASE,
        ),
    ),
    (
        "ACCOUNT_NUMBER",
        re.compile(
            rf"{_YOUR}(?:sort code|(?:account|member(?:ship)?|customer|policy|order) (?:number|no\b|id\b)|acc(?:oun)?t (?:no|#))",
            re.IGNORECASE,
        ),
    ),
    ("SOCIAL_HANDLE", re.compile(rf"{_YOUR}(?:\w+ )?(?:user ?name|handle|user ?id\b|login(?: name)?\b)", re.IGNORECASE)),
    ("US_SSN", re.compile(rf"{_YOUR}(?:social security|ssn\b)", re.IGNORECASE)),
    ("STREET_ADDRESS", re.compile(rf"{_YOUR}(?:(?:home|delivery|billing|shipping|postal|street) )?address", re.IGNORECASE)),
    (
        "PERSON",
        re.compile(
            r"\b(?:your|ur)\s+(?:(?:full|first|last|sur|family|maiden)\s?)?name\b|\bthe (?:full )?name on (?:the|your) \w+"
            r"|who (?:am i|i'?m) (?:speaking|talking|chatting) (?:to|with)",
            re.IGNORECASE,
        ),
    ),
]
_REQUEST = re.compile(
    r"\?|\b(?:please|confirm|provide|could you|can you|would you|may i|give|send|share|tell me|verify|need|enter|type)\b",
    re.IGNORECASE,
)
# Around the value of a short reply ("sure, it's under marchetti thanks"): fillers before it, courtesies after it.
_LEAD = re.compile(
    r"^(?:[\s,.:;!-]*(?:sure|yes|yeah|yep|yup|ok(?:ay)?|of course|certainly|no problem|hi|hello|hey|um+|uh+|so|well|right|"
    r"it'?s under|under(?: the name)?(?: of)?|it'?s|it is|its|that'?s|thats|that is|this is|the name is|name'?s|my "
    r"[a-z ]{1,20}? is|here(?: you go| it is)?|i'?m|i am|born on(?: the)?|on the|is)\b)+[\s,.:;!-]*",
    re.IGNORECASE,
)
_COURTESY = re.compile(r"\b(?:thanks|thank you|thx|ty|cheers|please|pls)$", re.IGNORECASE)
_REFUSAL = re.compile(
    r"^(?:no|nope|not|why|what|how|do|does|did|i don'?t|i do not|dont|can'?t|cannot|i'?d rather|rather not|n/?a|none|"
    r"i (?:have|forgot|need|want|already|just)|done|sent|dm'?d|dmed|will do|just did|check (?:your|the) dms?|yes|got it)\b",
    re.IGNORECASE,
)
# A reply that asks for time: the value may follow in the next turn ("hang on" / "ls6 2qt").
_WAIT = re.compile(
    r"^\W*(?:hold on|hang on|one (?:sec|second|moment|min(?:ute)?)|just a (?:sec|second|moment|min(?:ute)?)|wait|"
    r"let me (?:check|look|find)|give me a (?:sec|second|moment|min(?:ute)?)|brb)\b",
    re.IGNORECASE,
)
# The parts of a reply that answers several requests at once: "anna kowalczyk, ls6 2qt", "0321 and ls6 2qt".
_PART = re.compile(r"(?:(?!\s+and\s)[^,;\n])+")
_MAX_REPLY_WORDS = 12
_MAX_VALUE_WORDS = 8
# A reply is a value of the asked type only if it could be one: numbers hold a digit, an e-mail an @ or an "at"
# before a domain, a handle is one or two words, a name is words that are not all stop words ("do not").
_DIGIT_TYPES = {"DATE_OF_BIRTH", "ZIP_CODE", "PHONE_NUMBER", "ACCOUNT_NUMBER", "US_SSN", "STREET_ADDRESS"}
_AT = re.compile(
    r"@|\w\s+at\s+(?:[\w-]+(?:\.|\s+dot\s+)\w|(?:gmail|googlemail|yahoo|hotmail|outlook|icloud|aol|proton|gmx)\b)",
    re.IGNORECASE,
)


def _strip_courtesies(text: str, start: int) -> int:
    """Where ``text``'s value ends: before trailing courtesies and non-word characters ("... thanks!!"); in linear
    time (a nested pattern for this backtracked exponentially on runs of "!" or newlines)."""
    end = len(text)
    while True:
        while end > start and not text[end - 1].isalnum():
            end -= 1
        m = _COURTESY.search(text, start, end)
        if m is None or m.start() == start:
            return end
        end = m.start()


def _digit_count(value: str) -> int:
    return sum(ch.isdigit() for ch in value)


def _plausible(entity: str, value: str) -> bool:
    words = value.split()
    if entity == "PHONE_NUMBER":
        return _digit_count(value) >= 7
    if entity == "US_SSN":
        return _digit_count(value) >= 4
    if entity == "ZIP_CODE":
        return len(words) <= 2 and _digit_count(value) > 0 and sum(ch.isalnum() for ch in value) <= 10
    if entity == "ACCOUNT_NUMBER":
        return len(words) <= 4 and any(len(w) >= 4 and _digit_count(w) > 0 for w in words)
    if entity == "DATE_OF_BIRTH":
        return len(words) <= 5 and _digit_count(value) > 0
    if entity in _DIGIT_TYPES:  # an address: a house number and a street
        return len(words) >= 2 and _digit_count(value) > 0
    if entity == "EMAIL_ADDRESS":
        return _AT.search(value) is not None
    if entity == "SOCIAL_HANDLE":
        return len(words) <= 2
    if entity == "PERSON":
        return 0 < len(words) <= 4 and any(w not in stop_words() for w in _WORDS.findall(value.casefold()))
    return True


def asked_types(question: str, entities: Sequence[str]) -> list[str]:
    """The entity types an agent's turn asks the customer for, in the order it asks ("Can I have your name and
    postcode?" -> PERSON, ZIP_CODE); none when the turn asks nothing."""
    if not _REQUEST.search(question):
        return []
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for entity, pattern in _ASKS:
        if entity not in entities:
            continue
        for m in pattern.finditer(question):
            if not any(m.start() < e and s < m.end() for s, e in taken):
                found.append((m.start(), entity))
                taken.append(m.span())
                break
    return [entity for _, entity in sorted(found)]


def _reply_value(reply: str) -> tuple[int, int] | None:
    """Where the value of a short reply lies, on its first line (a signature may follow: "Sent from my
    iPhone"), less fillers before it and courtesies after it; None for a long reply, a question or a refusal."""
    first = reply.lstrip()
    offset = len(reply) - len(first)
    line = first.split("\n", 1)[0]
    if len(line.split()) > _MAX_REPLY_WORDS:
        return None
    lead = _LEAD.match(line)
    start = offset + (lead.end() if lead else 0)
    end = _strip_courtesies(reply[: offset + len(line)], start)
    value = reply[start:end]
    if sum(ch.isalnum() for ch in value) < 2 or "?" in value or len(value.split()) > _MAX_VALUE_WORDS or _REFUSAL.match(value):
        return None
    return start, end


def answer_spans(roles: Sequence[str], texts: Sequence[str], entities: Sequence[str]) -> list[list[Span]]:
    """Spans of the values customers give when an agent asks for them: an identity check answered in the next
    turns ("What's the postcode?" / "ls6 2qt", "the name on the account?" / "its under marchetti") holds no cue
    of its own. The agent's consecutive turns ask for types in order; each short customer reply after them (up to
    :data:`_MAX_REPLY_WORDS` words, less fillers and courtesies) is the first asked type it can be a value of
    (:func:`_plausible`), and a reply with as many parts (split at commas and "and") as types still asked gives
    one each, in order ("the last 4 of your phone and your postcode?" / "0321 and ls6 2qt")."""
    out: list[list[Span]] = [[] for _ in texts]
    asked: list[str] = []
    question: list[str] = []
    for i, (role, text) in enumerate(zip(roles, texts, strict=True)):
        if role != "customer":
            question = [*question, text] if i and roles[i - 1] != "customer" else [text]
            asked = asked_types(" ".join(question), entities)
            continue
        if _WAIT.match(text):
            continue  # the value may follow: the request stands
        where = _reply_value(text) if asked else None
        if where is None:
            asked = []  # an answer that is no value, or another subject: the request is over
            continue
        start, end = where
        parts = [m for m in _PART.finditer(text, start, end) if m.group(0).strip()]
        if len(asked) > 1 and len(parts) == len(asked):  # one part per value asked, in the order asked
            for m, entity in zip(parts, asked, strict=True):
                value = m.group(0).strip()
                lo = text.index(value, m.start())
                out[i].append(Span(entity, lo, lo + len(value), ANSWER_SCORE))
            asked = []
            continue
        value = text[start:end].strip()
        lo = text.index(value, start)
        found = next((e for e in asked if _plausible(e, value)), None)
        if found is None:
            asked = []
            continue
        out[i].append(Span(found, lo, lo + len(value), ANSWER_SCORE))
        asked.remove(found)
    return out


_NOT_PERSONAL = re.compile(r"product|company|brand|file|org|app|channel|intent|category|host|domain|type", re.IGNORECASE)


def key_hint(key: str) -> str | None:
    """The entity type a metadata key names (``customer_email`` -> EMAIL_ADDRESS), if any."""
    if _NOT_PERSONAL.search(key):
        return None
    return next((entity for pattern, entity in _KEY_HINTS if pattern.search(key)), None)


@dataclass(frozen=True)
class _KeyOf:
    """A path step naming the key itself, not its value: a nested key is text too ({"product": {"<e-mail>": 1}})."""

    key: str


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        keys = [((*path, _KeyOf(k)), k) for k in value if isinstance(k, str)]
        return [*keys, *(leaf for k, v in value.items() for leaf in _leaves(v, (*path, k)))]
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
            # a nested key is text, not a value of the kind its parent names ({"customer_phone": {"home": ...}})
            hints.append(None if path and isinstance(path[-1], _KeyOf) else hint)
            slots.append((key, path, leaf))
    return texts, hints, slots


def rebuild_metadata(
    metadata: dict[str, Any], slots: Sequence[MetadataSlot], redacted: Sequence[str], allow: Sequence[str]
) -> tuple[dict[str, Any], int]:
    """Allowed keys with their leaves redacted (a number stays a number unless it was redacted); other
    keys dropped. Returns the new metadata and how many keys were dropped."""
    out = {k: copy.deepcopy(v) for k, v in metadata.items() if k in allow}
    renames: list[tuple[str, tuple[Any, ...], str]] = []
    for (key, path, leaf), text in zip(slots, redacted, strict=True):
        if key not in out:
            continue
        if path and isinstance(path[-1], _KeyOf):
            if text != leaf:
                renames.append((key, path, text))
            continue
        new = leaf if not isinstance(leaf, str) and text == str(leaf) else text
        if not path:
            out[key] = new
            continue
        target = out[key]
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = new
    # nested keys last and deepest first, so the paths of the others still lead to their values
    for key, path, text in sorted(renames, key=lambda r: -len(r[1])):
        parent = out[key]
        for p in path[:-1]:
            parent = parent[p]
        old = path[-1].key
        new_key, n = text, 2
        while new_key in parent:  # two keys with one placeholder ("ana@x.com", "Ana@x.com"): both kept
            new_key, n = f"{text}#{n}", n + 1
        parent[new_key] = parent.pop(old)
    return out, sum(1 for k in metadata if k not in allow)


def whole_value_spans(texts: Sequence[str], hints: Sequence[str | None], entities: Sequence[str]) -> list[list[Span]]:
    """A span over each whole text whose metadata key names an entity type we redact."""
    wanted = set(entities)
    return [[Span(h, 0, len(t), 1.0)] if h in wanted and t.strip() else [] for t, h in zip(texts, hints, strict=True)]
