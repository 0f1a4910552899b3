"""Hostile-text normalisation for detection: a *shadow* of a text in which invisible format characters are
gone, compatibility forms are folded (NFKC: fullwidth digits, ligatures, superscripts), dash look-alikes are
``-`` and placeholders are inert, with an offset map back to the original so a span found in the shadow covers
the whole original value, invisible characters inside it included.

``strip_invisible`` / ``is_invisible`` are the same definition of "invisible" for the clean stage.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from dataclasses import dataclass

# Not category Cf but invisible all the same: combining grapheme joiner, Hangul fillers, braille blank.
_EXTRA_INVISIBLE = frozenset("\u034f\u115f\u1160\u3164\uffa0\u2800")
# Dash and minus look-alikes (non-breaking hyphen, figure dash, en/em dash, minus, small/fullwidth hyphen-minus).
_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d")
# A pseudonym we wrote (``<PERSON_1>``, ``<EMAIL_ADDRESS>``) or a template slot in real data (``{{Order Number}}``).
PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*>|\{\{[^{}\n]{1,80}\}\}")
# What a placeholder becomes in the shadow: one symbol that is no letter, digit, space, or cue word.
INERT = "\u00a4"


def is_invisible(ch: str) -> bool:
    """True for a character that renders as nothing: Unicode format characters (category Cf: zero-width
    space/joiners, word joiner U+2060, soft hyphen U+00AD, bidi controls U+202A-202E and U+2066-2069, BOM,
    tag characters) and a few other blank fillers."""
    return unicodedata.category(ch) == "Cf" or ch in _EXTRA_INVISIBLE


# Every invisible code point (see :func:`is_invisible`) as ranges, for the Unicode version they were listed
# from: scanning all 1.1M code points costs ~0.6 CPU s, in every process that cleans or redacts non-ASCII text.
# Another Unicode version (another Python) scans instead; a unit test keeps the list equal to the scan.
INVISIBLE_UNICODE_VERSION = "14.0.0"
INVISIBLE_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F),
    (0x0890, 0x0891), (0x08E2, 0x08E2), (0x115F, 0x1160), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x2064), (0x2066, 0x206F), (0x2800, 0x2800), (0x3164, 0x3164), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0),
    (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)  # fmt: skip


def scan_invisible() -> list[int]:
    """Every code point :func:`is_invisible` holds true for, by scanning them all (~170 of 1.1M)."""
    return [c for c in range(sys.maxunicode + 1) if is_invisible(chr(c))]


@functools.cache
def _invisible_class() -> re.Pattern[str]:
    if unicodedata.unidata_version == INVISIBLE_UNICODE_VERSION:
        codes = [c for a, b in INVISIBLE_RANGES for c in range(a, b + 1)]
    else:
        codes = scan_invisible()
    return re.compile("[" + re.escape("".join(map(chr, codes))) + "]")


def strip_invisible(text: str) -> str:
    """``text`` without its invisible characters (see :func:`is_invisible`)."""
    return text if text.isascii() else _invisible_class().sub("", text)


@dataclass(frozen=True)
class Shadow:
    """A normalised copy of ``original``; ``offsets[i]`` is the original index of shadow character ``i``
    (``offsets[len(text)] == len(original)``). ``offsets`` is ``None`` when the shadow is the original."""

    original: str
    text: str
    offsets: tuple[int, ...] | None = None

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """The original ``[start, end)`` for shadow ``[start, end)``: from the first character's origin to just
        after the last one's, so invisible characters inside the value are covered too."""
        if self.offsets is None:
            return start, end
        if end <= start:
            return self.offsets[start], self.offsets[start]
        first, last = self.offsets[start], self.offsets[end - 1] + 1  # a folded character (ligature) is covered whole
        if "\\u" in self.original:  # a value that ends in an escape ends after its six characters
            m = _ESCAPE.match(self.original, last - 1)
            last = m.end() if m else last
        return first, last

    def inert_positions(self) -> list[int]:
        """Shadow positions of the placeholders (each one :data:`INERT` character)."""
        if self.offsets is None:
            return []
        out, i = [], self.text.find(INERT)
        while i >= 0:
            if self.original[self.offsets[i]] != INERT:
                out.append(i)
            i = self.text.find(INERT, i + 1)
        return out


# A JSON or Python escape typed into text ("pelham\\u002estone\\u0040example\\u002ecom"): read as its character.
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _needs_work(text: str) -> bool:
    if "\\u" in text and _ESCAPE.search(text):
        return True
    if "<" in text or "{{" in text:
        return PLACEHOLDER.search(text) is not None or not text.isascii()
    return not text.isascii()


def _next_visible_is_digit(text: str, i: int) -> bool:
    while i < len(text) and is_invisible(text[i]):
        i += 1
    return i < len(text) and unicodedata.normalize("NFKC", text[i])[:1].isdigit()


def shadow(text: str) -> Shadow:
    """The detection shadow of ``text`` (pure; ASCII text without placeholders is returned as is)."""
    if not _needs_work(text):
        return Shadow(text, text)
    out: list[str] = []
    offsets: list[int] = []
    holders = {m.start(): m.end() for m in PLACEHOLDER.finditer(text)}
    escapes = {m.start(): chr(int(m.group(1), 16)) for m in _ESCAPE.finditer(text)} if "\\u" in text else {}
    i, n = 0, len(text)
    while i < n:
        if i in holders:
            out.append(INERT)
            offsets.append(i)
            i = holders[i]
            continue
        if i in escapes and (escapes[i].isprintable() or is_invisible(escapes[i])):
            # the escape, six characters, reads as the character it names, treated as if typed
            _shadow_char(escapes[i], text, i, i + 6, out, offsets)
            i += 6
            continue
        _shadow_char(text[i], text, i, i + 1, out, offsets)
        i += 1
    offsets.append(n)
    return Shadow(text, "".join(out), tuple(offsets))


def _shadow_char(ch: str, text: str, i: int, after: int, out: list[str], offsets: list[int]) -> None:
    """Append the shadow of ``ch`` (typed at ``text[i]``, or named by an escape there; ``after``: where the
    text goes on) to ``out``, each shadow character's origin ``i`` to ``offsets``."""
    if ch.isascii():
        out.append(ch)
        offsets.append(i)
    elif is_invisible(ch):
        if out and out[-1].isdigit() and _next_visible_is_digit(text, after):
            out.append(" ")  # an invisible digit-group separator reads as a space ("415<WJ>555" -> "415 555")
            offsets.append(i)
    elif ch in _DASHES:
        out.append("-")
        offsets.append(i)
    else:
        folded = unicodedata.normalize("NFKC", ch)
        for f in folded if not any(is_invisible(c) for c in folded) else strip_invisible(folded):
            out.append(f)
            offsets.append(i)
