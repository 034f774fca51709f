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

Length is counted in code points (Python's ``len``, pandas' ``str.len``, pydantic's
``max_length``); in NFC an accented letter is one.
"""

from __future__ import annotations

import unicodedata

from ._contract import PERSON_ID_MAX_LENGTH

__all__ = [
    "PERSON_ID_ACCEPTED",
    "person_id_problem",
    "unhashable_id_problem",
    "shown_id",
    "code_point",
]

PERSON_ID_ACCEPTED = (
    f"a string of 1 to {PERSON_ID_MAX_LENGTH} characters, not only spaces: letters, digits, "
    "punctuation, symbols and single spaces between them, in Unicode NFC form (an accented "
    "letter as one character); no space at either end and no control, invisible, "
    "bidirectional, private-use or unassigned character (such as U+0000-U+001F, U+200B-U+200F, "
    "U+202A-U+202E, U+2066-U+2069 or U+FEFF)"
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
    return None


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
