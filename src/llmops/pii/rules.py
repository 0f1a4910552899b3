"""Fast recognizers for what Presidio's defaults miss or do slowly: compiled regexes, checksums and
context rules, packaged as Presidio ``EntityRecognizer`` s so they live in a ``RecognizerRegistry``.

Each :class:`Rule` is one compiled pattern with an optional validator (Luhn, IBAN mod-97, SSN ranges,
``ipaddress``) and an optional context regex that raises a weak match's score when a cue word
("phone", "zip", "order") is near it. A match below the redact ``score_threshold`` is dropped.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llmops.pii.libraries import load_detection_libraries


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


def luhn_ok(value: str) -> bool:
    """Credit-card check digit (ISO/IEC 7812), on 13-19 digits."""
    digits = _digits(value)
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(value: str) -> bool:
    """IBAN mod-97 check (ISO 13616)."""
    s = re.sub(r"[ .-]", "", value).upper()
    if not 15 <= len(s) <= 34 or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    return int("".join(str(int(c, 36)) for c in s[4:] + s[:4])) % 97 == 1


def ssn_ok(value: str) -> bool:
    """US SSN structure: no 000/666/9xx area, no 00 group, no 0000 serial, not all one digit."""
    d = _digits(value)
    return len(d) == 9 and d[:3] not in {"000", "666"} and d[0] != "9" and d[3:5] != "00" and d[5:] != "0000" and len(set(d)) > 1


# Countries that issue IBANs (ISO 13616 registry): an IBAN-shaped value whose check digits fail is still one
# (mistyped, or one digit off a real account) when it starts with one of them.
IBAN_COUNTRIES = frozenset(
    "AD AE AL AT AZ BA BE BG BH BI BR BY CH CR CY CZ DE DJ DK DO EE EG ES FI FK FO FR GB GE GI GL GR GT HR HU IE IL IQ "
    "IS IT JO KW KZ LB LC LI LT LU LV LY MC MD ME MK MN MR MT MU NI NL NO OM PK PL PS PT QA RO RS RU SA SC SD SE SI SK "
    "SM SO ST SV TL TN TR UA VA VG XK YE".split()
)


def iban_shape_ok(value: str) -> bool:
    """IBAN structure without the check: a registry country, two digits, 11-30 more letters and digits."""
    s = re.sub(r"[ .-]", "", value).upper()
    return 15 <= len(s) <= 34 and s[:2] in IBAN_COUNTRIES and s[2:4].isdigit() and sum(c.isdigit() for c in s[4:]) >= 6


def nino_ok(value: str) -> bool:
    """UK National Insurance number structure: two prefix letters (not D, F, I, Q, U, V; O not second; not the
    unallocated BG, GB, KN, NK, NT, TN, ZZ), six digits, a suffix A-D."""
    s = re.sub(r"\s", "", value).upper()
    return (
        len(s) == 9
        and s[0] not in "DFIQUV"
        and s[1] not in "DFIQUVO"
        and s[:2] not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
        and s[2:8].isdigit()
        and s[8] in "ABCD"
    )


_VIN_VALUES = [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9]  # A-Z without I, O, Q
_VIN_MAP = {**{str(d): d for d in range(10)}, **dict(zip("ABCDEFGHJKLMNPRSTUVWXYZ", _VIN_VALUES, strict=True))}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def _vin_ok(value: str) -> bool:
    """A North American VIN: its ninth character is the check digit (ISO 3779 weights, mod 11, 10 = X), and it
    holds letters and digits."""
    v = value.upper()
    if len(v) != 17 or v.isdigit() or v.isalpha() or any(c not in _VIN_MAP for c in v):
        return False
    total = sum(_VIN_MAP[c] * w for c, w in zip(v, _VIN_WEIGHTS, strict=True)) % 11
    return v[8] == ("X" if total == 10 else str(total))


def handle_like(value: str) -> bool:
    """Does ``value`` look like a handle rather than a word ("my xbox is broken", "Steam is crashing")? A digit,
    an underscore or a dot in it, or capitals inside a word ("xXmarek", "MISSEPISSE")."""
    return any(c.isdigit() or c in "_." for c in value) or (len(value) > 3 and any(c.isupper() for c in value[1:]))


def has_digit(value: str) -> bool:
    return any(c.isdigit() for c in value)


def ip_ok(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def phone_ok(value: str) -> bool:
    return 7 <= len(_digits(value)) <= 15 and not _DATE.fullmatch(value.strip())


def account_ok(value: str) -> bool:
    return sum(c.isdigit() for c in value) >= 4 and not _DATE.fullmatch(value)


_DATE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_U = r"A-ZÀ-ÖØ-ÞĀ-ŽΑ-ΩА-Я"  # upper-case letters (Latin, Latin-1/Extended-A, Greek, Cyrillic)
_CAP = rf"[{_U}][^\W\d_]+"  # a capitalised word
_STREET = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Square|Sq|Terrace|"
    r"Parkway|Pkwy|Highway|Hwy|Circle|Cir|Trail|Pass|Radial|Crescent|Close|Row|Alley|Plaza|Loop|Path|Walk)\.?"
)
_UNIT = r"(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Floor|Room|Box)\s*#?\s*\d+[A-Za-z]?"
_HOME_UNIT = r"(?:Apt\.?|Apartment|Suite|Ste\.?|Flat)\s*#?\s*\d+[A-Za-z]?"  # a home, whatever surrounds it
# A line that continues an address block: unit, CITY, ", ST", "Country 12345", a bare postcode.
_ADDR_LINE = (
    rf"(?:{_UNIT}|,\s*[A-Z]{{2}}\b|{_CAP}(?:[ -]{_CAP})*(?:\s+\d{{3,6}}(?:-\d{{3,4}})?)?|[{_U}]{{2,}}|\d{{4,6}}(?:-\d{{3,4}})?)"
)
_HOUSE_NO = r"\d{1,5}[a-z]?\b(?!/)\.?"  # on the street's line; "24/7" is no house number
_ADDR_MORE = rf"(?:[ \t]*\n[ \t]*(?:>[ \t]*)?{_ADDR_LINE}){{0,4}}"
_ADDR_CONTEXT = (
    r"address|live[sd]?|located|street|moved|return|send|ship|deliver|billing|corner|station|reside|visit|"
    r"meet|place|office|apartment|house|home|here they are|it'?s in|is on|is at|off at|at|to"
)
# US states, Canadian provinces and Australian states: the code between a city and its postal code.
_US_STATES = (
    r"AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|"
    r"PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY"
)
_CA_PROVINCES = r"AB|BC|MB|NB|NL|NS|NT|NU|ON|PE|QC|SK|YT"
_AU_STATES = r"NSW|VIC|QLD|WA|SA|TAS|ACT|NT"
# Words after a number that make it a quantity, a price or a model, never a postal code before a city.
_NOT_UNIT = (
    r"(?!(?:Euros?|Dollars?|Pounds?|USD|EUR|GBP|Model|Version|Build|Edition|Series|Pro|Max|Plus|Ultra|Mini|HD|GB|TB|MB|"
    r"Units?|Items?|Pieces?|Points?|Miles?)\b)"
)
_FOREIGN_SUFFIX = (
    r"straße|strasse|str|weg|gasse|platz|allee|damm|ufer|gracht|straat|laan|plein|kade|singel|dijk|vej|gatan|gata|"
    r"vägen|veien|katu|utca"
)
_FOREIGN_PREFIX = (  # as written: capitalised, or the lower-case forms people type ("rue", "calle", "ul.")
    r"Calle|calle|C/|Avenida|Avda\.?|Av\.|Paseo|Carrer|Via|Viale|Piazza|Corso|Largo|Rue|rue|Bd|Chemin|Allée|Impasse|"
    r"Quai|Rua|Praça|Travessa|ul\.|ulica|al\.|aleja|os\.|Apartado"
)
_DMS = r"\d{1,3}°\s?\d{1,2}['′]\s?\d{1,2}(?:\.\d+)?[\"″]?\s?[NSEW]\b"  # 40°44'54.3"N
_ADDR_CUES = re.compile(rf"\b(?:{_ADDR_CONTEXT})\b", re.IGNORECASE)  # whole words: "to" is no cue in "tonight"
# Dates are no street and house number ("on 3 March 2026", "to Wednesday 9-12").
_NOT_DATE = (
    r"(?!(?:January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|"
    r"Jun|Jul|Aug|Sept?|Oct|Nov|Dec|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|Mon|Tue|Wed|Thu|Fri|Sat|"
    r"Sun)\b)"
)
_PHONE_CONTEXT = (
    r"phone|call|tel|mobile|cell|fax|desk|office|reach|text|sms|whats ?app|contact|dial|answer|message|registered|"
    r"number|ring|mob|handy|nummer|num[eé]ro|n[uú]mero|telefon|tel[eé]fono|t[eé]l[eé]phone|tlf|portable|cellulare|m[oó]vil"
)
_PHONE_SIGNS = "\u260e\U0001f4de\U0001f4f1"  # ☎ 📞 📱
# Names of national, tax and travel ids (NATIONAL_ID): the id follows its name.
_ID_NAMES = (  # acronyms in capitals only: "a frying pan 28cm", "a tin 400g" are none
    r"(?-i:DNI|NIE|BSN|PESEL|NIR|PAN|CURP|CPF|SIN|TFN|DL(?= ?#))|NHS (?:number|no)|personnummer|codice fiscale|aadhaar|pesel|"
    r"steuer-?id|steueridentifikationsnummer|tax (?:id|number|code)|national (?:id|insurance)|id card (?:number|no\.?)|"
    r"passport|reisepass|pasaporte|passeport|passaporto|driving licen[cs]e(?: number| no\.?)?|"
    r"(?<!driver )(?<!driver's )(?<!drivers )licen[cs]e (?:number|no\.?|#)"
)


@dataclass(frozen=True)
class Rule:
    """One pattern for one entity type. ``group`` selects the part of the match that is the value."""

    entity: str
    pattern: re.Pattern[str]
    score: float
    validate: Callable[[str], bool] | None = None
    group: int = 0
    context: re.Pattern[str] | None = None
    context_score: float = 0.0
    window: int = 48
    requires: re.Pattern[str] | None = None  # a cheap pre-check: no match of it anywhere, no match of the rule

    def find(self, text: str) -> list[tuple[int, int, float]]:
        if self.requires is not None and self.requires.search(text) is None:
            return []
        out = []
        for m in self.pattern.finditer(text):
            start, end = m.span(self.group)
            if start < 0 or end <= start:
                continue
            value = text[start:end]
            if self.validate is not None and not self.validate(value):
                continue
            score = self.score
            if self.context is not None and score < self.context_score:
                around = text[max(0, start - self.window) : start] + " " + text[end : end + self.window // 2]
                if self.context.search(around):
                    score = self.context_score
            out.append((start, end, score))
        return out


def _r(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


def _ctx(words: str) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{words})", re.IGNORECASE)


_PHONE_CUES = re.compile(rf"\b(?:{_PHONE_CONTEXT})|[{_PHONE_SIGNS}]", re.IGNORECASE)


RULES: tuple[Rule, ...] = (
    Rule("EMAIL_ADDRESS", _r(r"(?<![\w.+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"), 0.95),
    Rule("CREDIT_CARD", _r(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"), 0.9, luhn_ok),
    # Dotted groups ("4929.5521.0083.4417", Amex 4.6.5), never a run inside a longer dotted number.
    Rule("CREDIT_CARD", _r(r"(?<![\d.])\d{4}\.(?:\d{4}\.\d{4}\.\d{1,7}|\d{6}\.\d{5})(?!\d|\.\d)"), 0.9, luhn_ok),
    Rule("IBAN_CODE", _r(r"\b[A-Z]{2}\d{2}(?:[ .-]?[A-Z0-9]{4}){2,7}(?:[ .-]?[A-Z0-9]{1,3})?\b", re.IGNORECASE), 0.95, iban_ok),
    # The same shape with failing check digits, separators after the country code too ("NL-14-ABNA-0417-1643-02").
    Rule("IBAN_CODE", _r(r"\b[A-Z]{2}[ .-]?\d{2}(?:[ .-]?[A-Z0-9]{4}){2,7}(?:[ .-]?[A-Z0-9]{1,3})?\b"), 0.6, iban_shape_ok),
    # UK National Insurance numbers ("QQ 12 34 56 C"): valid structure in capitals, or any after its cue word.
    Rule("UK_NINO", _r(r"\b[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"), 0.85, nino_ok),
    Rule(
        "UK_NINO",
        _r(
            r"\b(?:NI|NINO|national insurance)(?: (?:number|no\.?|#))?(?: is)?\s*[:#]?\s*"
            r"([A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D])\b",
            re.I,
        ),
        0.85,
        group=1,
    ),
    # Short card numbers (Maestro, 12+ digits) and numbers failing Luhn count only right after "card".
    Rule("CREDIT_CARD", _r(r"\bcard(?:\s+(?:number|no\.?|#))?\s*:?\s*(\d(?:[ .-]?\d){11,18})(?![\d-]|\.\d)", re.I), 0.8, group=1),
    Rule("US_SSN", _r(r"(?<![\d-])\d{3}([- .])\d{2}\1\d{4}(?![\d-])"), 0.7, ssn_ok),
    Rule("US_SSN", _r(r"(?<![\d-])\d{9}(?![\d-])"), 0.3, ssn_ok, context=_ctx(r"ssn|social security"), context_score=0.8),
    # Not a version number ("firmware 4.2.1.7", "v1.2.0.3").
    Rule(
        "IP_ADDRESS",
        _r(
            r"(?<![\d.])(?<!\bv)(?<!version )(?<!firmware )(?<!\bbuild )(?<!release )(?<!\bver )"
            r"(?:\d{1,3}\.){3}\d{1,3}(?![\d.])",
            re.I,
        ),
        0.9,
        ip_ok,
    ),
    Rule("IP_ADDRESS", _r(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"), 0.9, ip_ok),
    # Credentials or tokens in a URL are secrets whatever else the URL is.
    Rule("URL", _r(r"\b[a-z][a-z0-9+.-]*://[^\s/:@]+:[^\s/@]+@\S+", re.IGNORECASE), 0.95),
    Rule(
        "URL",
        _r(r"\bhttps?://\S+?[?&](?:access_token|token|api_?key|key|sig|signature|password|pwd|auth|session|secret)=\S+", re.I),
        0.9,
    ),
    Rule("URL", _r(r"\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)]", re.IGNORECASE), 0.5),
    Rule("SOCIAL_HANDLE", _r(r"(?<![\w.@])@[A-Za-z0-9_]{2,30}\b"), 0.6),
    # Phones: international prefix or >= 2 separators is strong; otherwise a cue word must be near.
    Rule(
        "PHONE_NUMBER",
        _r(r"(?<![\w+])(?:\+|00)\d{1,3}(?:(?:[ .-]|\s?/\s?)?\(?\d{1,4}\)?){2,5}(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?!\w|-\d)"),
        0.75,
        phone_ok,
    ),
    # National mobile numbers, recognisable without a cue: UK 07xxx xxxxxx, German 015x/016x/017x, French and
    # Dutch 06/07 (+ 8 digits).
    Rule(
        "PHONE_NUMBER",
        _r(
            r"(?<![\w+./-])(?:07\d{3} ?\d{6}|01[5-7]\d{1,2}[ /-]?\d{7,8}|0[67](?:[ .-]?\d{2}){4})"
            r"(?!\w|[/-]\d|\.\d)"
        ),
        0.5,
        phone_ok,
    ),
    # An area code and a slash ("030/12345678", "Tel. 0151 / 2345 6789") after a cue.
    Rule(
        "PHONE_NUMBER",
        _r(r"(?<![\w+./-])\(?0\d{1,4}\)?\s?/\s?\d(?:[ -]?\d){3,9}(?!\w|[/-]\d|\.\d)"),
        0.3,
        phone_ok,
        context=_PHONE_CUES,
        context_score=0.7,
    ),
    Rule(
        "PHONE_NUMBER",
        _r(
            r"(?<![\w+./-])(?:\(\d{2,4}\)\s?|\d{2,5}[ .-])(?:\d{2,4}[ .-]){0,3}\d{2,4}"
            r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?!\w|[/-]\d|\.\d)"
        ),
        0.45,
        phone_ok,
        context=_PHONE_CUES,
        context_score=0.7,
    ),
    Rule(
        "PHONE_NUMBER",
        _r(r"(?<![\w+./-])\d{2,5}[ .-]?\d{4,10}(?!\w|[/-]\d|\.\d)"),
        0.2,
        phone_ok,
        context=_PHONE_CUES,
        context_score=0.65,
    ),
    # Order / account / ticket numbers in support text: an identifier after its cue word.
    Rule(
        "ACCOUNT_NUMBER",
        _r(
            r"(?:\b(?:order|account|acct|acc|invoice|tracking|reference|ref|booking|confirmation|ticket|case|policy|"
            # "a/c" is an account before its number word or 8+ digits ("the a/c 18000 BTU unit" is no account)
            r"membership|member|customer|card ending(?: in)?)|(?<!\w)a/c(?=\s*(?:no\.?|number|#|:?\s*\d{8})))"
            r"(?:\s+(?:no\.?|number|num|id|#))?\s*[:#]?\s*"
            r"([A-Z]{0,4}-?\d[A-Z0-9-]{4,24})\b",
            re.IGNORECASE,
        ),
        0.8,
        account_ok,
        group=1,
    ),
    # Street addresses: "12 Main Street", "Koskikatu 25", military, "the corner of X and Y", unit lines.
    Rule("STREET_ADDRESS", _r(rf"\b\d{{1,6}}[A-Za-z]?(?:\s+{_CAP}){{1,4}}\s+{_STREET}(?!\w){_ADDR_MORE}"), 0.75),
    Rule(
        "STREET_ADDRESS",
        _r(rf"\b\d{{1,6}}\s+(?:(?:ul|al|pl|str|r)\.?\s+)?{_NOT_DATE}{_CAP}(?:\s+{_CAP}){{0,2}}\s+\d{{1,5}}\b{_ADDR_MORE}"),
        0.6,
    ),
    Rule(
        "STREET_ADDRESS",
        _r(rf"\b(?:\d{{1,6}}\s+)?(?:(?:ul|al|pl|str)\.\s+)?{_NOT_DATE}{_CAP}(?:[ -][\w.]+){{0,2}}?[ \t]+{_HOUSE_NO}{_ADDR_MORE}"),
        0.35,
        context=_ADDR_CUES,
        context_score=0.75,
        window=72,
    ),
    Rule(
        "STREET_ADDRESS",
        _r(rf"\b(?:PSC|CMR|Unit|USNS|USS|USNV|USCGC)\s+[\w ,]+?{_ADDR_MORE}\s*[AFD]PO\s+A[AEP]\s+\d{{5}}\b"),
        0.85,
    ),
    Rule("STREET_ADDRESS", _r(r"\b[AFD]PO\s+A[AEP]\s+\d{5}\b"), 0.8),
    Rule("STREET_ADDRESS", _r(rf"\bthe corner of [^\n.,;]{{3,60}}? and (?:{_CAP}|ul\.)(?:[ -][\w.]+){{0,3}}"), 0.7),
    # A unit on a line of an address block, or after a comma or period in one ("... Lane\n>Suite 680", "rkp. 18.
    # Apt. 417"); elsewhere only near an address cue: "Box 2 of 3 arrived", "Room 101 was wrong" are no address.
    Rule("STREET_ADDRESS", _r(rf"(?:(?<=\n)[ \t>]*|(?<=[.,] )){_UNIT}\b{_ADDR_MORE}"), 0.5),
    Rule("STREET_ADDRESS", _r(rf"\b{_UNIT}\b{_ADDR_MORE}"), 0.3, context=_ADDR_CUES, context_score=0.6),
    Rule("STREET_ADDRESS", _r(rf"(?i:\b{_HOME_UNIT})\b(?! of\b){_ADDR_MORE}"), 0.5),
    Rule(
        "ZIP_CODE",
        _r(
            r"\b(?:zip ?code|post ?code|postal code|code postal|zip|postal|post|plz)\b\s*(?:is|:|-)?\s*"
            r"([A-Z0-9]{2,8}(?:[ -][A-Z0-9]{3,4})?)\b",
            re.IGNORECASE,
        ),
        0.7,
        has_digit,  # "post it" is no postcode
        group=1,
    ),
    # UK postcodes ("SW1A 1AA", "YO1 7HH"): outward code, a space, inward code, in capitals.
    Rule("ZIP_CODE", _r(r"\b[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]? \d[ABD-HJLNP-UW-Z]{2}\b"), 0.6),
    Rule(
        "AGE",
        _r(r"\b(\d{1,3})(?=[ -]?(?:years?|yrs?)[ -]?old\b|[ -]?y/?o\b|-year-old)", re.IGNORECASE),
        0.7,
        group=1,
    ),
    Rule(
        "AGE",
        _r(
            r"\b(?:turn(?:s|ed|ing)?|aged?|age of|when (?:he|she|i|they|we) (?:was|were)|(?P<im>i'?m|i am))\s+(\d{1,3})\b"
            r"(?!\s*(?:%|items?|pcs|units|boxes|orders?|times))"
            # "I'm 5 mins away", "I'm 2 weeks into the trial": after "I'm" a unit of time or distance is no age
            r"(?(im)(?!\s*(?:min(?:ute)?s?|hours?|hrs?|days?|weeks?|months?|secs?|seconds?|km|miles?|kg|lbs?|steps?|"
            r"stops?|floors?|blocks?|out of|of \d|in line|in the queue)\b))",
            re.I,
        ),
        0.6,
        group=2,
    ),
    Rule(
        "DATE_OF_BIRTH",
        _r(
            r"\b(?:born(?: on| in)?(?: the)?|date of birth(?: is|:)?(?:\s*it'?s)?|birth ?date(?: is)?|d\.?o\.?b\.?:?|"
            r"b-?day(?: is)?|birthday(?: is)?(?: on)?(?: the)?|geb\.|"
            r"geboren(?: am)?|geburtsdatum:?|n[ée]e? le|date de naissance:?|nacid[oa] el|fecha de nacimiento:?|"
            r"nat[oa] il|data di nascita:?)[\s.:-]*"
            r"((?:\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4})|(?:\w+ \d{1,2}(?:st|nd|rd|th)?,? (?:\d{4}|'?\d{2}))|"
            r"(?:\d{1,2}(?:st|nd|rd|th)?\.? (?:of )?\w+,? (?:\d{4}|'?\d{2}))|\d{8}|\d{4})(?!\d)",
            re.IGNORECASE,
        ),
        0.75,
        group=1,
    ),
    Rule(
        "US_DRIVER_LICENSE",
        _r(r"\bdriver'?s? licen[cs]e(?: (?:number|no\.?|#))?(?: is|:)?\s*([A-Z0-9][A-Z0-9-]{4,19})\b", re.I),
        0.8,
        has_digit,  # "driver's license within 30 days" holds none
        group=1,
    ),
    # UK bank sort codes ("sort code 20-00-00", "sc 404784").
    Rule(
        "ACCOUNT_NUMBER",
        _r(r"\b(?:sort(?: ?code)?|s/c|sc)\s*(?:is|:)?\s*(\d{2}[- ]?\d{2}[- ]?\d{2})(?![\d-])", re.I),
        0.8,
        group=1,
    ),
    Rule("STREET_ADDRESS", _r(r"\bP\.?\s?O\.?\s?Box\s+\d{1,7}\b", re.I), 0.6),
    # National and travel ids after their name: the id holds a digit; the cue names the country's id or a passport
    # or licence ("mi DNI es 12345678Z", "BSN 111222333", "PESEL 85070912345", "PAN: ABCPD1234E", "Reisepass C01X00T47").
    Rule(
        "NATIONAL_ID",
        _r(
            rf"\b(?:{_ID_NAMES})\b(?:\s+(?:number|no\.?|num|nr\.?|#))?(?:\s+(?:is|es|est|ist|è|=))?\s*[:#-]?\s*"
            r"(?!(?:number|no|num|nr)\b)((?=[A-Z.-]*\d)(?=(?:[A-Z0-9][ .-]?){5})[A-Z0-9][A-Z0-9.-]{2,20}"
            r"(?: (?=[A-Z.-]*\d)[A-Z0-9.-]{2,8}){0,3})(?![\w-])",
            re.I,
        ),
        0.8,
        has_digit,
        group=1,
    ),
    # Hardware (MAC) addresses: six hex pairs with colons or dashes.
    Rule(
        "MAC_ADDRESS",
        _r(r"(?<![\w:-])(?:[0-9A-F]{2}([:-]))(?:[0-9A-F]{2}\1){4}[0-9A-F]{2}(?![\w:-])", re.I),
        0.85,
        requires=_r(r"[0-9A-F]{2}[:-][0-9A-F]{2}[:-]", re.I),
    ),
    # A latitude/longitude pair with four or more decimals: where someone is, to a few metres.
    Rule("LOCATION", _r(r"(?<![\w.-])-?\d{1,2}\.\d{4,},\s?-?\d{1,3}\.\d{4,}(?![\d.])"), 0.8, requires=_r(r"\d\.\d{4}")),
    # Streets of other languages with their house number: a compound ending in a street word ("Hauptstraße 42",
    # "Musterweg 7a", "Keizersgracht 123") or a street word before the name ("Calle de Alcalá 123", "Via Giuseppe
    # Garibaldi 15", "ul. Marszałkowska 84/92", "12 rue de la Paix").
    Rule(
        "STREET_ADDRESS",
        _r(rf"\b[{_U}][^\W\d_]*(?i:{_FOREIGN_SUFFIX})\.?[ \t]+\d{{1,5}}[a-z]?(?:/\d{{1,4}})?\b(?!\s*(?:%|€|eur|km|kg))"),
        0.72,
    ),
    Rule(
        "STREET_ADDRESS",
        _r(
            rf"(?:\b\d{{1,5}}[a-z]?,?\s+)?\b(?:{_FOREIGN_PREFIX})\s+(?:(?:de|del|la|las|los|di|della|des|du|le|da|do|dos|van|der)\s+)*"
            rf"[{_U}][^\W\d_]+(?:\s+[{_U}][^\W\d_]+){{0,3}}(?:\s+\d{{1,5}}[a-z]?(?:/\d{{1,4}})?\b)?"
        ),
        0.72,
        has_digit,  # with its house number: "Calle de Alcalá 123", "12 rue de la Paix"
    ),
    # A postal code between an address and its city ("..., 10115 Berlin", "1015 CJ Amsterdam", "00-514 Warszawa"),
    # after a city and its state or province code ("Anchorage AK 99509", "Toronto ON M5V 3L9"), or a city's
    # six-digit PIN ("Bengaluru 560095").
    Rule(
        "ZIP_CODE",
        _r(rf"(?<=, )(\d{{4}} ?[A-Z]{{2}}|\d{{4,5}}|\d{{2}}-\d{{3}})(?= {_NOT_UNIT}[{_U}][^\W\d_]+\b)"),
        0.6,
        group=1,
    ),
    *(
        Rule("ZIP_CODE", _r(rf"\b[{_U}][^\W\d_]+,? (?:{codes}) ({code})\b"), 0.6, group=1)
        for codes, code in (
            (_US_STATES, r"\d{5}(?:-\d{4})?"),
            (_CA_PROVINCES, r"[A-Z]\d[A-Z] ?\d[A-Z]\d"),
            (_AU_STATES, r"\d{4}"),
        )
    ),
    Rule("ZIP_CODE", _r(rf"(?<=, ){_NOT_UNIT}[{_U}][^\W\d_]+ (\d{{6}})\b"), 0.6, group=1),
    # A lower-case UK postcode after a comma ("5 elm close, hitchin sg4 9rt").
    Rule("ZIP_CODE", _r(r"(?<=, )(?:[a-z]+ )?([a-z]{1,2}\d{1,2}[a-z]? \d[abd-hjlnp-uw-z]{2})\b(?=\s*$|\s*[,.\n])"), 0.5, group=1),
    # Vehicles: a VIN (17 characters, no I, O or Q) and a registration plate after its cue.
    Rule("VEHICLE_ID", _r(r"\b(?:VIN\s*[:#]?\s*)([A-HJ-NPR-Z0-9]{17})\b", re.I), 0.85, group=1),
    Rule("VEHICLE_ID", _r(r"\b(?-i:[A-HJ-NPR-Z0-9]{8}[0-9X][A-HJ-NPR-Z0-9]{8})\b"), 0.6, _vin_ok),
    Rule(
        "VEHICLE_ID",
        _r(
            r"\b(?:reg(?:istration)? (?:number|no\.?|plate)|reg|(?:number|licen[cs]e|registration) plate|my plate|kenteken|"
            r"kennzeichen|immatriculation|matr[ií]cula|targa)(?: (?:is|number|no\.?))?\s*[:#]?\s*"
            r"(?-i:((?=[A-Z0-9 -]*\d)(?=[A-Z0-9 -]*[A-Z])(?=(?:[A-Z0-9][ -]?){5})[A-Z0-9]{1,4}(?:[ -]?[A-Z0-9]{1,4}){0,3}))\b",
            re.I,
        ),
        0.75,
        group=1,
    ),
    # Handles: Discord tags ("nightowl#4821"), Reddit users ("u/throwaway_kai_1990"), and a name after its
    # platform ("steam username: xXmarekvoss92Xx", "my insta is kai.v").
    Rule(
        "SOCIAL_HANDLE",
        _r(r"(?<![\w#])[A-Za-z0-9_.]{2,32}#\d{4}\b"),
        0.3,
        context=_ctx("discord"),
        context_score=0.8,
        requires=_r("#"),
    ),
    Rule("SOCIAL_HANDLE", _r(r"(?<![\w/])/?u/[A-Za-z0-9_-]{3,20}\b"), 0.8, requires=_r("u/")),
    Rule(
        "SOCIAL_HANDLE",
        _r(
            r"\b(?:discord|steam|psn|xbox|gamertag|insta(?:gram)?|ig|snap(?:chat)?|tiktok|twitter|telegram|reddit|twitch|"
            r"user ?name)(?: (?:id|name|username|handle|tag))?(?:\s+is|\s*:)\s*@?([A-Za-z0-9_.-]{3,32})\b",
            re.I,
        ),
        0.75,
        handle_like,
        group=1,
    ),
    # Profile addresses without a scheme ("linkedin.com/in/ottilie-brannigan-4b21a").
    Rule(
        "URL",
        _r(
            r"\b(?:www\.)?(?:linkedin\.com/in|facebook\.com|instagram\.com|twitter\.com|x\.com|github\.com|tiktok\.com)"
            r"/@?[\w.-]{3,60}(?:\?[\w=&.%-]+)?"
        ),
        0.8,
    ),
    # Defanged IPv4 ("81[.]2[.]69[.]143") and coordinates in degrees, minutes, seconds.
    Rule("IP_ADDRESS", _r(r"(?<![\d.])\d{1,3}(?:\[\.\]\d{1,3}){3}(?![\d.])"), 0.85, requires=_r(r"\[\.\]")),
    Rule("LOCATION", _r(rf"\b{_DMS}(?:,?\s*{_DMS})?"), 0.8, requires=_r("°")),
    # Crypto wallets: Ethereum (0x + 40 hex), Bitcoin bech32 (bc1...), and base58 addresses after a cue.
    Rule("CRYPTO", _r(r"\b0x[0-9a-fA-F]{40}\b|\bbc1[02-9ac-hj-np-z]{25,62}\b"), 0.9, requires=_r("0x|bc1")),
    Rule(
        "CRYPTO",
        _r(r"\b(?:btc|bitcoin|wallet|crypto)\b[^\n]{0,30}?\b([13][a-km-zA-HJ-NP-Z1-9]{25,34})\b", re.I),
        0.85,
        group=1,
        requires=_r("btc|bitcoin|wallet|crypto", re.I),
    ),
)

# Person names by context: self-introductions, titles, greetings and signatures.
_LOWER_NAME_CUE = (
    r"\b(?:my (?:(?:first|last|sur|family|full|maiden) ?)?name(?: is|'s|:)|(?:first|last|sur|family|maiden) ?name(?: is|:)"
    r"|(?<!my )name's|under the name(?: of)?|me llamo|mi nombre es|je m'appelle|je suis|ich hei(?:ße|sse)|mein name ist|"
    r"mi chiamo|mijn naam is|ik heet|meu nome é|eu sou|nazywam się|mam na imię)"
)
# Words that follow a name in a sentence, never a second name word.
_AFTER_NAME = (
    r"(?:and|but|or|so|i|im|i'm|i've|from|at|on|in|with|by|here|there|is|was|the|a|an|my|please|thanks|thank|to|for|"
    r"not|also|btw|again|speaking|calling|writing|if|as|ok|okay|hi|hello)"
)
# What follows "my name is" when it is no name: its state on a document or account.
_NAME_STATES = frozenset(
    "wrong incorrect missing misspelled misspelt spelled spelt showing shown displayed listed correct right different "
    "changed updated printed written blank empty same fine still already attached below above required needed invalid "
    "unknown hidden visible cut truncated gone not no showing loading appearing coming saved stored registered "
    "mentioned used linked attached included".split()
)


def lower_name_ok(value: str) -> bool:
    """May ``value`` (one or two lower-case words after a name cue) be a name? Not when its first word is a state
    ("wrong", "missing", "spelled": :data:`_NAME_STATES`), a word of :data:`NOT_NAMES`, or a stop word that is no
    first name ("on", "not"; "will" and "may" are names)."""
    from llmops.pii.libraries import stop_words
    from llmops.pii.names import raw_lexicon

    word = value.split()[0].casefold()
    if word in NOT_NAMES or word in _NAME_STATES:
        return False
    return word not in stop_words() or word in raw_lexicon()[0] or word in _STOP_WORD_NAMES


_STOP_WORD_NAMES = frozenset({"will", "may", "don"})  # stop words that are first names after "my name is"
# Words before a verb, never before a name: "it Shipped", "not Showing", "is Loading" (truecased for NER).
_BEFORE_VERB = frozenset("it is was not been be being are were has have had they he she we still just keeps keep stopped".split())


def truecased_verb(text: str, start: int, word: str) -> bool:
    """Is ``word`` at ``start`` of lower-case ``text`` a verb form ("-ed", "-ing") after a pronoun, an auxiliary or
    a negation ("it shipped", "not showing"), which truecasing made look like a name?"""
    if not word.endswith(("ed", "ing")):
        return False
    before = text[:start].split()[-1:]
    return bool(before) and before[0].casefold() in _BEFORE_VERB


_NAME = rf"{_CAP}(?:[ -]{_CAP}){{0,2}}"
NOT_NAMES = frozenset(
    "team all everyone there support sir madam guys folks customer service sorry thanks thank hello hi dear "
    "good morning afternoon evening regards best cheers sincerely the a an this that i you we note subject date "
    "when where what who why how phone mobile desk fax email address zip tel time re fwd question answer agent "
    "user customer bot assistant system summary update status total price order name website web url title company "
    "job occupation location city country state dob birthday age gender id account card ssn iban ip when me "
    "zipcode postcode zip postal username gmail wifi wi-fi bluetooth router modem app laptop iphone ipad android".split()
)
_NW = rf"[{_U}][^\W\d_A-ZÀ-ÖØ-ÞΑ-ΩА-Я]+"  # a name word: a capital, then lower-case letters
_FULL_NAME = rf"{_NW}(?:\s+[{_U}]\.?)?(?:\s+{_NW}){{1,2}}"
_NAME_KEY = (
    r"(?:(?:(?:full|first|last|given|family|customer|contact|sur)[ _-]?)?name(?:\s*\([^)\n]{1,20}\))?"
    r"|(?:account|card)[ _-]?holder(?:[ _-]?name)?|name on (?:the |your |my )?(?:account|card))"
)
NAME_LIST = re.compile(rf"\b{_NW}(?:,\s+{_NW}){{1,}},?\s+and\s+{_NW}\b")
_NOT_PLACES = (
    r"(?!(?:January|February|March|April|May|June|July|August|September|October|November|December|Monday|Tuesday|"
    r"Wednesday|Thursday|Friday|Saturday|Sunday|The|This|That|My|Our|Your|Order|Customer|Support|Team|Christmas)\b)"
)
PLACE_RULES: tuple[Rule, ...] = (
    Rule(
        "LOCATION",
        _r(
            rf"\b(?:flew|fly|flying|moved|move|travel(?:l?ing|l?ed)?|arrived|based|born|grew up|live[sd]?|living|located|"
            rf"relocat\w+|visit\w*|stay\w*|trip|city of|home city|from|in|to|at|near)\s+(?:(?:here|there) )?"
            rf"(?:(?:from|to|in|at)\s+)?{_NOT_PLACES}({_NW}(?:[ -]{_NW}){{0,2}})"
        ),
        0.5,
        group=1,
    ),
)
NAME_RULES: tuple[Rule, ...] = (
    # Relational cues ("my son Adam", "speak to Ana Silva", "last name? Turgeon").
    Rule(
        "PERSON",
        _r(
            rf"\b(?:kid|son|daughter|wife|husband|brother|sister|friend|father|mother|dad|mom|mum|partner|boss|"
            rf"colleague|named|called|directed by|written by|starring|speak to|talk to|ask for|(?:last|first|sur) ?name\??)"
            rf"\s+({_NAME})"
        ),
        0.7,
        group=1,
    ),
    # A line holding only a full name: signature and address blocks, e-mail headers, CVs.
    Rule("PERSON", _r(rf"(?:^|\n)[ \t]*(?:>[ \t]*)?({_FULL_NAME})[ \t]*(?=\n|$)"), 0.6, group=1),
    # Two or three name-shaped words inside a sentence ("including Dobroslaw Tomaszewski of ...").
    Rule("PERSON", _r(rf"(?<=[a-z,;] )({_NW}(?:\s+[{_U}]\.?)?(?:\s+{_NW}){{1,2}})\b"), 0.45, group=1),
    # Chat transcripts: "Anna: ..." speaker labels.
    Rule("PERSON", _r(rf"(?:^|\n)[ \t]*({_NW}):\s*\S"), 0.5, group=1),
    Rule("PERSON", _r(rf"\b(?:[Mm]y name is|[Nn]ame'?s|[Cc]all me|[Tt]his is|I am|I'm)\s+({_NAME})"), 0.75, group=1),
    # The same cues in lower-case chat ("my surname is quallstrom", "it's under the name hazelgrove", "this is
    # zephyrine speaking"): one or two words, the first a possible name (lower_name_ok: "my name is not
    # showing" is none), the second never a word that follows names ("my name is anna and ...").
    Rule(
        "PERSON",
        _r(rf"{_LOWER_NAME_CUE}\s+([a-z][a-z'-]+(?: (?!{_AFTER_NAME}\b)[a-z][a-z'-]+)?)\b(?!')", re.I),
        0.7,
        lower_name_ok,
        group=1,
    ),
    Rule(
        "PERSON",
        _r(rf"\bthis is\s+([a-z][a-z'-]+(?: (?!{_AFTER_NAME}\b)[a-z][a-z'-]+)?)\s+speaking\b", re.I),
        0.7,
        lower_name_ok,
        group=1,
    ),
    Rule("PERSON", _r(rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?\s+({_NAME})"), 0.8, group=1),
    Rule(
        "PERSON",
        _r(rf"(?:^|\n)\s*(?:Hi|Hello|Hey|Dear|Good (?:morning|afternoon|evening))\s+(?:(?:Mr|Mrs|Ms|Dr)\.?\s+)?({_NAME})\b"),
        0.65,
        group=1,
    ),
    Rule(
        "PERSON",
        _r(rf"\b(?:Regards|Best|Cheers|Thanks|Thank you|Sincerely|Yours|Warmly|Best wishes),?\s*\n?\s*[-–]?\s*({_NAME})\b"),
        0.65,
        group=1,
    ),
    Rule("PERSON", _r(rf"(?:^|\n)\s*(?:--|–|-|\^)\s*({_NAME})[ \t]*(?=\n|$)"), 0.6, group=1),
    # A name field: a quoted key in JSON-like text ('"name": "Tamsin Okonkwo"'), or a "Name:" line of a form.
    Rule(
        "PERSON",
        _r(
            rf"""["'](?:{_NAME_KEY}|first|last|given|family|surname|user|author|sender|recipient|customer)["']\s*:\s*"""
            r"""["'](?=[^"'\n]*[^\W\d_])([^"'\n\d]{2,60})["']""",
            re.I,
        ),
        0.8,
        group=1,
    ),
    Rule(
        "PERSON",
        _r(rf"(?:^|\n)[ \t]*{_NAME_KEY}[ \t]*(?:[:=]|\s-)[ \t]*([^\n,;]{{2,60}}?)[ \t]*(?=[\n,;]|$)", re.I),
        0.75,
        group=1,
    ),
    # A Markdown or pipe table row "| name | gideon ashworth |".
    Rule("PERSON", _r(rf"\|\s*{_NAME_KEY}\s*\|\s*([^|\n]{{2,60}}?)\s*\|", re.I), 0.75, group=1),
    # A booking or account under a name ("booking for 4 under Haverbrook", "registered under Ana Ruiz").
    Rule(
        "PERSON",
        _r(
            rf"\b(?:book(?:ed|ing)|reserv(?:ed|ation)|table|registered)(?: for \d+(?: people| guests)?)?"
            rf" under (?:the name (?:of )?)?({_NAME})"
        ),
        0.75,
        group=1,
    ),
    # A name in a query string or form post ("?name=radomir+jovanovic&email=...").
    Rule("PERSON", _r(rf"(?:^|[?&\s])(?:{_NAME_KEY}|first|last|surname)=([^&\s#]{{2,60}})", re.I), 0.8, group=1),
)


class RuleRecognizer:
    """Our rules for one entity type as a Presidio recognizer (built lazily: Presidio is a heavy import)."""

    @staticmethod
    def create(entity: str, rules: Sequence[Rule]) -> Any:
        load_detection_libraries()
        from presidio_analyzer import EntityRecognizer, RecognizerResult

        class _Recognizer(EntityRecognizer):
            def load(self) -> None:
                return None

            def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
                found = []
                for rule in rules:
                    for start, end, score in rule.find(text):
                        if rule.entity == "PERSON" and text[start:end].split()[0].casefold() in NOT_NAMES:
                            continue
                        found.append(RecognizerResult(rule.entity, start, end, score))
                return found

        return _Recognizer(supported_entities=[entity], name=f"Llmops{entity.title().replace('_', '')}Recognizer")


def own_recognizers() -> list[Any]:
    """One Presidio recognizer per entity type that our rules cover."""
    from llmops.pii.informal import INFORMAL_RULES
    from llmops.pii.names import LOWERCASE_NAME_RULE

    by_entity: dict[str, list[Rule]] = {}
    for rule in (*RULES, *INFORMAL_RULES, *NAME_RULES, LOWERCASE_NAME_RULE, *PLACE_RULES):
        by_entity.setdefault(rule.entity, []).append(rule)
    return [RuleRecognizer.create(entity, rules) for entity, rules in by_entity.items()]
