"""Person names where the NER model cannot see them: lower-case chat ("thanks maria gonzalez", "i'm maria"),
and single names the small model calls an organisation ("Brett", "Jay & Trish").

The cue is a name lexicon: the first and last names of Faker's person providers for the locales below
(census- and registry-derived lists shipped in the ``faker`` package), less the names that are also ordinary
words (:data:`AMBIGUOUS`: "will", "grace", "bill", ... as they occur in lower case in customer-support
text). A lexicon name in lower case is truecased for NER (the model decides), and a lexicon first name after
a greeting or self-introduction, or followed by a lexicon surname, is a name by itself.
"""

from __future__ import annotations

import functools
import importlib
import re

from llmops.pii.common_words import COMMON_WORDS
from llmops.pii.libraries import stop_words
from llmops.pii.rules import Rule

# Locales whose names our users' customers carry; each is a list of real given names and surnames.
_LOCALES = (
    "en_US en_GB en_IE en_IN en_CA en_AU en_NZ es_ES es_MX fr_FR de_DE it_IT pt_BR pt_PT nl_NL pl_PL tr_TR sv_SE fi_FI "
    "ru_RU uk_UA ar_AA hi_IN zu_ZA yo_NG tw_GH vi_VN id_ID fil_PH ja_JP zh_CN ko_KR"
).split()

# Lexicon names that are also ordinary English words in lower case (from the words of the Bitext
# customer-support corpus and spaCy's stop words; see data/pii-gold/README.md). Never a cue on their own.
AMBIGUOUS = frozenset(
    """
    a ability able about above access account act add address after again age ah ai al all am an and angel any april
    are art as ask at august autumn b baby back bad ball bank bar bay be bear bell best big bill bird black blue bond
    book boss box boy brand bright brown buck bush but buy by c call can cap card care carry case cash chance change
    charity chase cherry child christian church city clay clear close cole cook cool cost could court cover crane
    cross crystal d dale dawn day de dean dear del delivery di do dollar don dot down dr duke e earl early east easy
    eden edge else em email en end ever eve faith fall far fast fee field fine fish fisher flower for ford fox frank
    free friend from fry gale game gay gem gene get gift glad glen glory gold golden good grace grant gray green grey
    guy hale hall happy hardy harmony hart have hay he heart heaven help her here hill him his hope how hunt hunter i
    if in iris is it ivy jack jade james jay jewel joy jr judge july june just justice kay key kind king knight la lake
    lane law lee legend les lily link little long look lord love low luck lucky ma mac main major man march mark marsh
    mason master matter max may me mercy merry might miles mill miller mint miss mo moon more moss most much my n
    name nash new next nice night no noble north not now oak ocean of official oh ok on one or order other our page
    paid park parker pay pearl penny pierce pin pink plain plan please poor post power price prince queen quick rain
    ran range ray read reed rich ride right river rock rose rowan royal ruby rush s sage sale say sea see send shaw
    she ship short should sky small smart snow so son south spring star steel stone storm strong summer sun sunny
    sweet t tag tan tell than that the them then there these they this thomas those to today top town tracy true
    try tu un under up us use van very via victory vienna view wall ward was way we well west what when where which
    white who why wild will win winter wise with wood would wright yet you young your
    among bo cant cases company date edit ek eta fair fields fo ho holder house jo junk le li lo lot made nee noone
    om pages per pi real seven street swift tailor vi weeks wu yu server story loyal trader mens java
    """.split()
)

# Lexicon first names that are also everyday nouns of shopping and support (food, plants, colours, products):
# names after a cue ("thanks hazel"), capitalised or before a surname; nouns alone in lower case after a
# determiner ("the jasmine rice", "extra virgin olive oil"), and NER's single-word "alexa" in lower case.
NOUN_NAMES = frozenset(
    """
    olive jasmine hazel poppy daisy amber ginger basil honey candy cookie coco alexa siri cortana zara mercedes
    heather holly willow violet rosemary saffron cinnamon pepper clementine apple melody sandy dusty misty ebony
    ivory coral blossom maple aspen echo lavender magnolia marigold juniper fern berry peaches brandy sherry
    champagne chardonnay mocha latte caramel toffee fudge biscuit cocoa sugar kiwi mango lemon lime cedar birch
    """.split()
)
_DETERMINERS = frozenset("the a an this that these those some any my your our their his her its extra virgin of".split())
# Month and weekday abbreviations that are also first names ("Mar", "Jun"): no name next to a number.
_DATE_NAMES = frozenset("jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun".split())
_NAME_WORD = r"[a-z][a-z'-]{1,20}"
# Greetings, thanks and self-introductions that a name follows in chat.
_NAME_CUE = re.compile(  # cues may follow each other ("hi im maria", "thanks, this is maria")
    r"\b(?:(?:thanks|thank you|thx|ty|hi|hello|hey|hiya|dear|bye|cheers|regards|signed|i'?m|i am|im|my name is|"
    r"my name'?s|name'?s|this is|call me|it'?s|speak to|talk to|ask for|mr|mrs|ms|miss|dr|sorry|my (?:wife|husband|"
    r"son|daughter|mum|mom|dad|brother|sister|friend|partner|boss|colleague))[,.!]?\s+)+"
    rf"({_NAME_WORD}(?:\s+{_NAME_WORD})?)\b",
    re.IGNORECASE,
)
_HONORIFICS = frozenset({"mr", "mrs", "mister"})  # not "ms" (ms word), "dr" (dr appointment), "miss" (a verb)
# Support agents sign tweets and chats "^Kartika", "-Shie", "_Rjay" (initials like "*MS" are no name).
_SIGN_OFF = re.compile(r"(?:\^\s?|(?:^|\s)[-–_~]\s?(?=[A-Z][A-Za-z]?[a-z]{2,15}\s*(?:\d/\d)?\s*$))([A-Z][A-Za-z]?[a-z]{2,15})\b")
_SINGLE = re.compile(r"(?<![\w@#'-])[A-Za-z][a-z'-]{2,20}(?![\w@'-])")
_SINGLE_SCORE = 0.5  # a lone lexicon first name: above the redaction threshold, below the leak gate's


@functools.cache
def raw_lexicon() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, last names) of the locales' name lists, case-folded, ambiguous words included."""
    first: set[str] = set()
    last: set[str] = set()
    for locale in _LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except ModuleNotFoundError:
            continue
        for attr, into in (
            ("first_names", first),
            ("first_names_female", first),
            ("first_names_male", first),
            ("last_names", last),
        ):
            into.update(n.casefold() for n in getattr(provider, attr, ()) if isinstance(n, str) and n.isalpha())
    return frozenset(first), frozenset(last)


@functools.cache
def lexicon() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, last names), case-folded, without words that are also ordinary words."""
    stopwords = stop_words()

    from llmops.pii.common_words import COMMON_WORDS

    first, last = raw_lexicon()

    def usable(names: frozenset[str]) -> frozenset[str]:
        return frozenset(n for n in names if len(n) > 2 and n not in AMBIGUOUS and n not in COMMON_WORDS and n not in stopwords)

    return usable(first), usable(last)


def is_name_word(word: str) -> bool:
    """A word of the lexicon (first or last name) that is not also an ordinary word."""
    first, last = lexicon()
    w = word.casefold()
    return w in first or w in last


def find_lowercase_names(text: str) -> list[tuple[int, int, float]]:
    """(start, end, score) of names the NER model misses: a support agent's sign-off ("... ^Shivangi"),
    a lexicon first name alone (capitalised or not), a lower-case lexicon first name after a cue ("thanks maria",
    "i'm maria") with its lexicon surname if one follows, and first name + surname pairs ("paul walker")."""
    first, last = lexicon()
    out: list[tuple[int, int, float]] = []
    for m in _NAME_CUE.finditer(text):
        words = m.group(1).split()
        if text[m.start() : m.start(1)].rstrip(" ,.!").split()[-1].casefold() in _HONORIFICS and words[0].islower():
            # "mrs oriane vaszary-klemm": after a title the words are a name, in the lexicon or not
            names = [w for w in words if w.casefold() not in stop_words() and w.casefold() not in COMMON_WORDS]
            if names and names[0] == words[0]:
                out.append((m.start(1), m.end(1) if names == words else m.start(1) + len(words[0]), 0.7))
            continue
        if words[0].casefold() not in first or not words[0].islower():
            continue
        end = m.start(1) + len(words[0])
        if len(words) == 2 and words[1].islower() and (words[1] in last or words[1] in first):
            end = m.end(1)
        out.append((m.start(1), end, 0.7))
    out.extend((m.start(1), m.end(1), 0.6) for m in _SIGN_OFF.finditer(text))
    prev: re.Match[str] | None = None  # one pass over the words: lone first names and "first last" pairs
    for m in _SINGLE.finditer(text):
        word = m.group(0)
        folded = word.casefold()
        if folded in first and (word.islower() or word[1:].islower()):
            dated = folded in _DATE_NAMES and _next_to_number(text, m.start(), m.end())
            # an everyday noun in lower case after a determiner ("the jasmine rice", "virgin olive oil") is no name
            noun = word.islower() and folded in NOUN_NAMES and prev is not None and prev.group(0).casefold() in _DETERMINERS
            if not noun and not dated:
                out.append((m.start(), m.end(), _SINGLE_SCORE))
        elif (
            prev is not None
            and word.islower()
            and folded in last
            and prev.group(0) in first
            and text[prev.end() : m.start()].isspace()
        ):
            out.append((prev.start(), m.end(), 0.6))
        prev = m
    return out


def _next_to_number(text: str, start: int, end: int) -> bool:
    """Is there a digit right before ``start`` or right after ``end``, past spaces, commas and dots ("2 Mar 2026")?"""
    before = start - 1
    while before >= 0 and text[before] in " \t,.":
        before -= 1
    after = end
    while after < len(text) and text[after] in " \t,.":
        after += 1
    return (before >= 0 and text[before].isdigit()) or (after < len(text) and text[after].isdigit())


def truecase_names(text: str) -> str:
    """``text`` with its lower-case lexicon names capitalised (same length), so NER can judge them."""
    if text.isupper():
        return text
    first, _ = lexicon()  # surnames in lower case are mostly ordinary words ("story", "banks")
    text = re.sub(r"\b[a-z][a-z'-]+\b", lambda m: m.group(0).capitalize() if m.group(0) in first else m.group(0), text)
    return _PLACE_CUE.sub(_capitalise_place, text) if _PLACE_HINT.search(text) else text


# A lower-case word after "in", "from", "near", "fly to" ... may be a place ("someone from vietnam", "in washington
# dc"): capitalised for NER to judge, with the next word when it is a short region code ("dc", "nyc").
_PLACE_HINT = re.compile(r"\b(?:in|from|near|to)\s+[a-z]")
_PLACE_CUE = re.compile(
    r"\b(?:in|from|near|(?:fly|flying|flight|flights|travel|trip|move|moved|moving|back|drive|going) to)\s+"
    r"([a-z][a-z'-]{2,})(\s+(?:dc|nyc|uk|usa|uae)\b)?"
)


_NOT_PLACE = re.compile(r"(?:ing|ed|ly|tion|sion|ment|ness|ity|ise|ize|ful|less|able|ible)$")  # verbs, adverbs, abstractions


def _capitalise_place(m: re.Match[str]) -> str:
    stopwords = stop_words()

    word, code = m.group(1), m.group(2) or ""
    if word in stopwords or _NOT_PLACE.search(word):
        return m.group(0)
    head = m.group(0)[: m.start(1) - m.start(0)]
    return head + word.capitalize() + (code.upper() if code.strip() not in stopwords else code)


class _NameFinder:
    """The lower-case name finder as a :class:`Rule` (``find`` only)."""

    entity = "PERSON"

    def find(self, text: str) -> list[tuple[int, int, float]]:
        return find_lowercase_names(text)


LOWERCASE_NAME_RULE: Rule = _NameFinder()  # type: ignore[assignment]


_US_STATE_CODES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR PA "
    "RI SC SD TN TX UT VT VA WA WV WI WY".split()
)


def relabel(label: str, text: str, context: str = "") -> str | None:
    """The small model calls many names an organisation or a group ("Brett", "Jay & Trish", "Kishan"): such a
    span whose every word is a lexicon name, or that is one capitalised word which no @handle of the text
    contains (support posts tag the brands they name: "@Spotify ... Spotify"), is a person; a bare US
    state code is a location."""
    if label not in {"ORG", "NORP"}:
        return None
    if text in _US_STATE_CODES:
        return "LOCATION"
    words = re.findall(r"[^\W\d_]+", text)
    if words and len(words) <= 3 and all(is_name_word(w) for w in words):
        return "PERSON"
    if label == "ORG" and _ONE_NAME.fullmatch(text) and not _in_handle(text, context):
        return "PERSON"
    return None


_ONE_NAME = re.compile(r"[A-Z][a-z]+[A-Za-z]*")
_HANDLE = re.compile(r"@(\w+)")


def _in_handle(word: str, context: str) -> bool:
    if "@" not in context:
        return False
    w = word.casefold()
    return any(w in h.casefold() for h in _HANDLE.findall(context))
