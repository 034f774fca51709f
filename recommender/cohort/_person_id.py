"""What a ``person_id`` may hold: the one rule every entry (cohort files, the HTTP routes,
outcome rows and their corrections) applies, and how an offending character is shown.

An id is a key: it is hashed byte for byte, so two ids that look alike must be alike. Refused:
characters that do not show (controls, zero-width and other formatting characters, the
byte-order mark), the bidirectional controls that make a line read differently from what it
holds ("Trojan Source"), lone surrogates (no text: they cannot be hashed), private-use and
unassigned code points, separators other than the plain space, a space at either end, and an
id not in Unicode NFC form (``é`` written as ``e`` + U+0301 would be another person than ``é``).
These are exactly the code points Python's :meth:`str.isprintable` refuses, plus the two
position rules. Nothing is normalised here: an accepted id is hashed as sent, so every id
stored before this rule hashes as it did.

Refused too: an id whose letters mix scripts beyond what Unicode's UTS #39 "highly restrictive"
profile allows (one script; or Latin with Han, Hiragana and Katakana; Latin with Han and
Bopomofo; Latin with Han and Hangul): ``рerson-1`` with a Cyrillic ``р`` (U+0440) looks like
``person-1`` and would hash as another person. Python's :mod:`unicodedata` has no Script
property, so a letter's script is read from its Unicode name (``CYRILLIC SMALL LETTER ER``),
for the scripts of :data:`_SCRIPTS`; a letter of any other name (a modifier letter, a
mathematical letter, a script not listed) counts as no script, as digits, punctuation and marks
do: the rule refuses only mixes it can name. An id it refuses that was stored before it is
still found where a stored id is looked for (outcome rows of a person served, erasures).

Length is counted in code points (Python's ``len``, pandas' ``str.len``, pydantic's
``max_length``); in NFC an accented letter is one.
"""

from __future__ import annotations

import functools
import unicodedata

from ._contract import PERSON_ID_MAX_LENGTH

__all__ = [
    "PERSON_ID_ACCEPTED",
    "person_id_problem",
    "unhashable_id_problem",
    "shown_id",
    "code_point",
    "script_of",
]

PERSON_ID_ACCEPTED = (
    f"a string of 1 to {PERSON_ID_MAX_LENGTH} characters, not only spaces: letters, digits, "
    "punctuation, symbols and spaces between them, in Unicode NFC form (an accented "
    "letter as one character); no space at either end and no control, invisible, "
    "bidirectional, private-use or unassigned character (such as U+0000-U+001F, U+200B-U+200F, "
    "U+202A-U+202E, U+2066-U+2069 or U+FEFF); letters of one script, or Latin with Han and "
    "Japanese kana, with Han and Bopomofo, or with Han and Hangul (never Latin with Cyrillic or "
    "Greek, for instance)"
)

# The scripts a letter's Unicode name starts with (its first word), as UTS #39 names them: the
# scripts whose letters are confused with Latin ones, those of the allowed mixes, and the
# other widely used ones. Each id letter of another name counts as no script.
_SCRIPTS = {
    word: word.title()
    for word in (
        "LATIN GREEK COPTIC CYRILLIC ARMENIAN HEBREW ARABIC SYRIAC THAANA NKO DEVANAGARI "
        "BENGALI GURMUKHI GUJARATI ORIYA TAMIL TELUGU KANNADA MALAYALAM SINHALA THAI LAO "
        "TIBETAN MYANMAR GEORGIAN HANGUL ETHIOPIC CHEROKEE KHMER MONGOLIAN HIRAGANA KATAKANA "
        "BOPOMOFO"
    ).split()
}
_HAN = ("CJK UNIFIED IDEOGRAPH-", "CJK COMPATIBILITY IDEOGRAPH-")
# Letters named after a script that Unicode's Scripts.txt gives to no script (Common): the
# halfwidth kana voicing marks, the Greek numeral sign and the Arabic tatweel. With them, the
# names give no letter of Unicode 14 a script other than its own (tests/
# test_person_id_scripts_dec07d.py compares every letter with fontTools' Scripts.txt).
_COMMON_LETTERS = frozenset({0x0374, 0x0640, 0xFF9E, 0xFF9F})
# UTS #39, 5.2: the mixes the "highly restrictive" profile allows beside a single script.
_ALLOWED_MIXES = (
    frozenset({"Latin", "Han", "Hiragana", "Katakana"}),
    frozenset({"Latin", "Han", "Bopomofo"}),
    frozenset({"Latin", "Han", "Hangul"}),
)

# Named in a refusal, so that the program can find the character in its own export.
_BIDI = frozenset(
    [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)  # fmt: skip


def code_point(character: str) -> str:
    """``U+200B ZERO WIDTH SPACE``: a character as a message may show it, never itself."""
    name = unicodedata.name(character, "")
    return f"U+{ord(character):04X}" + (f" {name}" if name else "")


def shown_id(text: str, *, edge_spaces: bool = True) -> str:
    """``text`` with every character :func:`person_id_problem` refuses written as ``<U+200B>``
    (a space at either end too, and in an id not in NFC every combining mark), so that an id in
    a message or a log reads as what it holds. ``edge_spaces=False`` leaves spaces at the ends
    as they are, for a value shown between quotes (where they show).

    >>> shown_id("p\u202e1"), shown_id("p 1 "), shown_id("Jos\u00e9")
    ('p<U+202E>1', 'p 1<U+0020>', 'José')
    >>> shown_id(" nurse ", edge_spaces=False)
    ' nurse '
    """
    nfc = unicodedata.is_normalized("NFC", text)
    if nfc and text.isprintable() and (not edge_spaces or text.strip(" ") == text):
        return text
    inner = range(len(text) - len(text.lstrip(" ")), len(text.rstrip(" ")))
    inner = inner if edge_spaces else range(len(text))

    def plain(i: int, c: str) -> bool:
        shows = c.isprintable() and (nfc or not unicodedata.category(c).startswith("M"))
        return shows and (c != " " or i in inner)  # a space at an end does not show either

    return "".join(c if plain(i, c) else f"<U+{ord(c):04X}>" for i, c in enumerate(text))


def _kind(character: str) -> str:
    category = unicodedata.category(character)
    if ord(character) in _BIDI:
        return "a bidirectional-text control: it makes the id read differently from what it holds"
    if ord(character) == 0xFEFF:
        return "a byte-order mark, invisible (a file's first bytes read as part of the id)"
    return {
        "Cc": "a control character",
        "Cf": "an invisible formatting character",
        "Cs": "a lone surrogate, which is not text",
        "Co": "a private-use character",
        "Cn": "an unassigned code point or a noncharacter",
        "Zl": "a line separator",
        "Zp": "a paragraph separator",
        "Zs": "a space other than the plain space U+0020",
    }[category]


def unhashable_id_problem(text: str) -> str | None:
    """What makes ``text`` impossible to hash (a lone surrogate, as JSON's ``"\\ud800"`` reads
    in Python), else None: such an id was never stored, and is refused wherever it comes."""
    for position, character in enumerate(text, 1):
        if unicodedata.category(character) == "Cs":
            return f"character {position} is {code_point(character)}, {_kind(character)}"
    return None


def person_id_problem(text: str) -> str | None:
    """What is wrong with ``text`` as a ``person_id``, in words that name the offending
    character by its code point (never the character, never the id); None when it is accepted.

    Examples
    --------
    >>> person_id_problem("p-000123") is None
    True
    >>> person_id_problem("p-000\\u200b123")
    'character 6 is U+200B ZERO WIDTH SPACE, an invisible formatting character'
    >>> person_id_problem("p1 ")
    'ends with a space (U+0020): the id with it and without it would be two people'
    >>> person_id_problem("Jose\\u0301")
    'character 5 is U+0301 COMBINING ACUTE ACCENT: the id is not in Unicode NFC form, which writes U+0065 U+0301 as U+00E9'
    """
    if not text.strip():
        return "holds only spaces" if text else "is empty"
    if len(text) > PERSON_ID_MAX_LENGTH:
        return f"has {len(text)} characters (Unicode code points); at most {PERSON_ID_MAX_LENGTH}"
    if not text.isprintable():
        position, character = next((i, c) for i, c in enumerate(text, 1) if not c.isprintable())
        return f"character {position} is {code_point(character)}, {_kind(character)}"
    for end, at in (("starts", 0), ("ends", -1)):
        if text[at] == " ":
            return f"{end} with a space (U+0020): the id with it and without it would be two people"
    if not unicodedata.is_normalized("NFC", text):
        return _not_nfc(text)
    return None if text.isascii() else _mixed_scripts(text)


@functools.lru_cache(maxsize=8192)  # ids repeat their letters: a name is read once each
def script_of(character: str) -> str | None:
    """The script of a letter, read from its Unicode name (``Cyrillic`` for U+0440 CYRILLIC
    SMALL LETTER ER), for the scripts this rule names; ``None`` for anything else.

    >>> script_of("p"), script_of("\u0440"), script_of("\u5c71"), script_of("\uff8a"), script_of("1")
    ('Latin', 'Cyrillic', 'Han', 'Katakana', None)
    """
    if not unicodedata.category(character).startswith("L") or ord(character) in _COMMON_LETTERS:
        return None  # digits, punctuation, symbols and marks go with any script
    name = unicodedata.name(character, "")
    if name.startswith(_HAN):
        return "Han"
    words = name.split(" ")
    if words[0] in ("FULLWIDTH", "HALFWIDTH"):  # ｐ, ﾊ: the same script, another width
        words = words[1:]
    return _SCRIPTS.get(words[0]) if words else None


def _mixed_scripts(text: str) -> str | None:
    """Which two letters of ``text`` mix scripts the highly restrictive profile does not allow
    together, in words; ``None`` when its letters may go together."""
    first: dict[str, tuple[int, str]] = {}  # script: its first letter (position, character)
    count: dict[str, int] = {}
    for position, character in enumerate(text, 1):
        script = script_of(character)
        if script is not None:
            first.setdefault(script, (position, character))
            count[script] = count.get(script, 0) + 1
    if len(first) < 2 or any(set(first) <= mix for mix in _ALLOWED_MIXES):
        return None
    # Two scripts no allowed mix holds together (some two are: see _ALLOWED_MIXES), the one of
    # more letters first: the odd letter is the other's (the Cyrillic р of "рerson-1").
    scripts = sorted(first, key=lambda script: (-count[script], first[script][0]))
    main, odd = next(
        (a, b)
        for i, a in enumerate(scripts)
        for b in scripts[i + 1 :]
        if not any({a, b} <= mix for mix in _ALLOWED_MIXES)
    )
    (at, seen), (position, character) = first[main], first[odd]
    return (
        f"mixes {main} and {odd} letters: character {position} is {code_point(character)} "
        f"({odd}), among {main} letters such as character {at}, {code_point(seen)}; letters "
        "of two scripts that look alike make an id look like another person's (UTS #39 "
        "mixed script)"
    )


def _not_nfc(text: str) -> str:
    position = next(
        i for i in range(1, len(text) + 1) if not unicodedata.is_normalized("NFC", text[:i])
    )
    start = position - 1
    while start > 0 and unicodedata.combining(text[start]):
        start -= 1
    if start == position - 1 and start > 0:  # e.g. a Hangul vowel joining the consonant before
        start -= 1
    written = text[start:position]
    composed = unicodedata.normalize("NFC", written)

    def points(part: str) -> str:
        return " ".join(f"U+{ord(c):04X}" for c in part)

    return (
        f"character {position} is {code_point(text[position - 1])}: the id is not in Unicode NFC "
        f"form, which writes {points(written)} as {points(composed)}"
    )
