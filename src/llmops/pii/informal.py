"""Rules for informal and obfuscated writing, where the values the structured rules look for are written
to dodge them or in chat style: e-mail addresses spelled "zorblat99 at gmail dot com" or "x [at] y (dot) com",
phone numbers in digit groups behind odd separators or spelled out ("five five five ..."), and street
addresses typed in lower case ("1423 quimbly road apt 5b austin tx 78701").

They are :class:`~llmops.pii.rules.Rule` s like the others and run on the detection shadow, where invisible
characters are already gone and fullwidth digits are ASCII.
"""

from __future__ import annotations

import re

from llmops.pii.rules import _PHONE_CUES, Rule

_TLD = (
    r"(?:com|net|org|edu|gov|io|co|uk|de|fr|es|it|nl|ca|au|in|info|biz|me|us|ru|br|jp|cn|pl|se|ch|be|eu|mx|at|bg|hu|cz|"
    r"sk|ro|gr|pt|ie|dk|no|fi|nz|za|ar|cl|tr|ua|il|kr|tw|hk|sg|my|ph|vn|th|ae|lt|lv|ee|si|hr|rs|is|lu|app|dev|email|online)"
)
_AT_BRACKET = r"(?:\s*[\[({<]\s*at\s*[\])}>]\s*|\s*@\s+)"  # no "x @handle": a space after the @
_DOT = r"(?:\s*[\[({<]\s*(?:dot|\.)\s*[\])}>]\s*|\s+dot\s+|\s*\.\s*)"
_SPOKEN_DOT = r"(?:\s*[\[({<]\s*(?:dot|\.)\s*[\])}>]\s*|\s+dot\s+)"
_MAIL_HOSTS = r"(?:gmail|googlemail|yahoo|hotmail|outlook|live|msn|icloud|me|mac|aol|proton(?:mail)?|gmx|mail|ymail|zoho|yandex)"
_USER = r"(?<![\w.@+-])[A-Za-z0-9][\w.+-]{0,63}"

# A user part with a dot, a digit or an underscore in it, starting with a letter ("zoltan.keresztes",
# "tavishwright1988"; "version 2.1 at apple.com" has none).
_USER_LIKE = r"(?<![\w.@+-])(?=[\w.+-]*[._\d])[A-Za-z][\w.+-]{2,63}"
# A user part with a dot between letters ("zoltan.keresztes"; "bought a PS5 at currys.co.uk" has none).
_DOTTED_USER = r"(?<![\w.@+-])(?=[\w+-]*[A-Za-z]\.[A-Za-z])[A-Za-z][\w.+-]{2,63}"
# "ostrava dot pavel at gmail dot com": the user part may hold spoken dots too.
_SPOKEN_USER = rf"{_USER}(?:{_SPOKEN_DOT}[A-Za-z0-9][\w+-]{{0,63}}){{0,3}}"
_DIGIT_WORDS = "zero|oh|o|one|two|three|four|five|six|seven|eight|nine"
_DIGIT_WORD = rf"(?:{_DIGIT_WORDS})"

_STATES = (
    "al|ak|az|ar|ca|co|ct|de|dc|fl|ga|hi|id|il|in|ia|ks|ky|la|me|md|ma|mi|mn|ms|mo|mt|ne|nv|nh|nj|nm|ny|nc|nd|oh|ok|or|pa|"
    "ri|sc|sd|tn|tx|ut|vt|va|wa|wv|wi|wy"
)
_SUFFIX = r"(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|terrace|parkway|pkwy|highway|hwy|crescent)\.?"
# Suffixes that are also ordinary words ("2 hard drive"): an address only with a unit or city-state tail.
_WEAK_SUFFIX = r"(?:drive|dr|court|ct|way|place|pl|circle|cir|trail|close|alley|plaza|loop)\.?"
# Words that never name a street: a number followed by them is a quantity ("5 minutes down the road").
_NOT_STREET = (
    r"(?!(?:the|a|an|of|on|in|at|to|and|or|for|from|by|my|your|our|his|her|their|this|that|minutes?|hours?|days?|weeks?|"
    r"months?|years?|times?|items?|miles?|km|blocks?|more|other|down|up|off|out|across|along|over|per|times)\b)"
)
_LOWER_WORD = rf"{_NOT_STREET}[a-z][a-z'-]*"
_UNIT = r"(?:apt|apartment|suite|ste|unit|flat|#)\.?\s*#?\s*[a-z0-9-]{1,6}"
_STREET_HEAD = rf"\b\d{{1,6}}[a-z]?\s+(?:{_LOWER_WORD}\s+){{1,3}}"
_CITY_STATE = rf"[ ,]+(?:[a-z]+[ ,]+){{1,3}}(?:{_STATES})(?:[ ,]+\d{{5}}(?:-\d{{4}})?)?\b"
_TAIL = rf"(?:[ ,]+{_UNIT}\b)?(?:{_CITY_STATE})?"


# Cheap pre-checks: a text without them cannot hold the rule's value.
_HAS_AT = re.compile(r"[\[({<]\s*at\s*[\])}>]|@\s", re.IGNORECASE)
_HAS_DOT = re.compile(r"\bdot\b", re.IGNORECASE)
_HAS_SPOKEN_AT = re.compile(r"\sat\s", re.IGNORECASE)
_HAS_HOST = re.compile(rf"\bat\s+{_MAIL_HOSTS}\b", re.IGNORECASE)
_HAS_DIGIT_WORDS = re.compile(rf"\b{_DIGIT_WORD}\b[\s,.-]{{0,3}}(?:{_DIGIT_WORD}\b|\d)", re.IGNORECASE)
_HAS_SUFFIX = re.compile(rf"\b{_SUFFIX}(?![\w-])", re.IGNORECASE)
_HAS_WEAK_SUFFIX = re.compile(rf"\b{_WEAK_SUFFIX}(?![\w-])", re.IGNORECASE)


def _spelled_digits(value: str) -> int:
    return sum(1 for w in re.findall(rf"\d|{_DIGIT_WORD}\b", value, re.IGNORECASE))


def spelled_phone_ok(value: str) -> bool:
    """7-15 digits, at least three of them written as words (a spelled-out number, not a list of figures)."""
    words = re.findall(rf"\b{_DIGIT_WORD}\b", value, re.IGNORECASE)
    spelled = [w for w in words if w.casefold() not in {"o", "oh"}]
    return 7 <= _spelled_digits(value) <= 15 and len(spelled) >= 3


def split_phone_ok(value: str) -> bool:
    digits = sum(c.isdigit() for c in value)
    return 9 <= digits <= 15


def _r(pattern: str, flags: int = re.IGNORECASE) -> re.Pattern[str]:
    return re.compile(pattern, flags)


INFORMAL_RULES: tuple[Rule, ...] = (
    # "x [at] y [dot] com", "x (at) y.com", "x @ y . com": the brackets or spaces are the obfuscation.
    Rule(
        "EMAIL_ADDRESS", _r(rf"{_SPOKEN_USER}{_AT_BRACKET}[a-z0-9-]+(?:{_DOT}[a-z0-9-]+)*?{_DOT}{_TLD}\b"), 0.85, requires=_HAS_AT
    ),
    # "x at y dot com": a spoken dot, or a well-known mail host ("zorblat99 at gmail.com").
    Rule(
        "EMAIL_ADDRESS",
        _r(rf"{_SPOKEN_USER}\s+at\s+[a-z0-9-]+(?:{_DOT}[a-z0-9-]+)*?{_SPOKEN_DOT}{_TLD}\b"),
        0.85,
        requires=_HAS_DOT,
    ),
    Rule("EMAIL_ADDRESS", _r(rf"{_SPOKEN_USER}\s+at\s+{_MAIL_HOSTS}{_DOT}{_TLD}\b"), 0.8, requires=_HAS_HOST),
    # "zoltan.keresztes at freemail.hu": a spoken "at" between a user part that looks like one (a dot, a digit or
    # an underscore in it: "shop at amazon.com" is none) and a domain with its dots.
    Rule("EMAIL_ADDRESS", _r(rf"{_DOTTED_USER}\s+at\s+[a-z0-9-]+(?:\.[a-z0-9-]+)*\.{_TLD}\b"), 0.8, requires=_HAS_SPOKEN_AT),
    # A webmail address without its domain ("quillon.marsh@gmail") and an URL-encoded one ("radomir.j%40gmail.com").
    Rule("EMAIL_ADDRESS", _r(rf"{_USER_LIKE}@{_MAIL_HOSTS}\b(?!\.\w)"), 0.8, requires=re.compile("@")),
    Rule("EMAIL_ADDRESS", _r(rf"(?<![\w.@+-])[\w.+-]+%40[a-z0-9-]+(?:\.[a-z0-9-]+)*\.{_TLD}\b"), 0.9, requires=re.compile("%40")),
    # "my gmail is tavishwright1988": the account named after its cue, when it looks like a user part.
    Rule(
        "EMAIL_ADDRESS",
        _r(rf"\bmy (?:{_MAIL_HOSTS}|e-?mail)(?: (?:address|account|id))? is\s+({_USER_LIKE})\b(?!\s+at\b|@)"),
        0.75,
        group=1,
    ),
    # Phone digits in small groups behind any separators ("555 . 012 . 3456", "5-5-5-0-1-2-3-4-5-6").
    Rule(
        "PHONE_NUMBER",
        _r(
            r"(?<![\w+])\(?\d{1,4}\)?(?:\s*[-./_|*~,:]\s*|\s{2,}|\s)(?:\(?\d{1,4}\)?(?:\s*[-./_|*~,:]\s*|\s{2,}|\s)){1,8}\d{1,4}(?![\w])"
        ),
        0.3,
        split_phone_ok,
        context=_PHONE_CUES,
        context_score=0.7,
        requires=_PHONE_CUES,  # scored below any threshold without its cue
    ),
    # Digits spelled as words, mixed with figures or not ("five five five, oh one two ...").
    Rule(
        "PHONE_NUMBER",
        _r(rf"\b(?:(?:{_DIGIT_WORD}|\d{{1,4}})\b[\s,.-]{{0,3}}){{3,14}}(?:{_DIGIT_WORD}|\d{{1,4}})\b"),
        0.7,
        spelled_phone_ok,
        requires=_HAS_DIGIT_WORDS,
    ),
    # Lower-case US street address: number, street words, suffix, optional unit, optional city + state + ZIP.
    # Scored above NER (0.7), so a truecased street name read as a person does not take the address over.
    Rule("STREET_ADDRESS", _r(rf"{_STREET_HEAD}{_SUFFIX}(?![\w-]){_TAIL}"), 0.72, requires=_HAS_SUFFIX),
    Rule(
        "STREET_ADDRESS",
        _r(rf"{_STREET_HEAD}{_WEAK_SUFFIX}(?:[ ,]+{_UNIT}\b{_TAIL}|{_CITY_STATE})"),
        0.72,
        requires=_HAS_WEAK_SUFFIX,
    ),
)
