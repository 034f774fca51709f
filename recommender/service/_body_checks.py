"""What a request body must be before its route's model is given it, and the refusal of one
that is not.

The front door (:class:`~recommender.service._gate.Gate`) asks these checks in turn: a body no
parser should be trusted with (nested too deep, an object of too many keys, a key given twice,
not JSON at all: :func:`_unparsable`, saying why when the sender can be told: :func:`_sent_as`),
one too large for its route (:func:`_too_large_for`), one holding unpaired surrogate escapes
(:func:`_lone_surrogates`), and one its route's model refuses (:func:`_invalid`). Each returns
``(status, payload)``, the payload's problems naming the field, the value and what is accepted,
or None when the body passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from pydantic import ValidationError

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_OBJECT_KEYS",
    "MAX_PROFILE_BODY_BYTES",
    "json_depth",
]

# The deepest body the API defines is 4 levels (a batch, its list, a profile, its `offered`
# list); parsers recurse per level, so far deeper bodies are refused before any parser runs.
MAX_JSON_DEPTH = 32
# The most keys any one object of the API holds is a profile's (13 fields and a model's extra
# features). A validator spends about 15 us and a few kB on each key it refuses, so an object of
# a million unknown keys (10 MB) took half a minute and 3 GB; far larger objects are refused
# before any validator runs.
MAX_OBJECT_KEYS = 256


# One profile is a few hundred bytes (a kilobyte with every arm offered). A validator's error
# carries the object it was found in, converted anew for each error: a 32 MiB profile of four
# million numbers missing its ten fields cost 16 s and 2.3 GB.
MAX_PROFILE_BODY_BYTES = 64 * 1024
_BODY_LIMITS = {"/recommend": MAX_PROFILE_BODY_BYTES}


def _too_large_for(path: str, body: bytes) -> tuple[int, dict] | None:
    """The 413 of a body the route's model is not given (it parsed: a body that does not
    is refused for that first)."""
    limit = _BODY_LIMITS.get(path.rstrip("/"))
    return None if limit is None or len(body) <= limit else _too_large(limit)


def _too_large(limit: int) -> tuple[int, dict]:
    return 413, {
        "error": f"the request body is larger than {limit:,} bytes",
        "problems": [
            {
                "field": "body",
                "value": None,
                "accepted": f"at most {limit:,} bytes",
                "message": "too large",
            }
        ],
    }


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


class _TooManyKeys(ValueError):
    def __init__(self, count: int):
        super().__init__(f"an object with {count:,} keys")
        self.count = count


def _refuse_duplicates(pairs: list) -> dict:
    if len(pairs) > MAX_OBJECT_KEYS:
        raise _TooManyKeys(len(pairs))
    # Most JSON parsers keep the last of two equal keys, so '"crisis_risk": true, ...,
    # "crisis_risk": false' would silently switch a crisis flag off; no reading is safe.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


class _Repeated(dict):
    """An object read with keys given twice (``repeated``); the first reading of each kept."""

    repeated: tuple = ()


def _mark_repeated(pairs: list) -> dict:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked, seen = _Repeated(), set()
    for key, value in pairs:
        if key in seen:
            if key not in marked.repeated:  # a key given three times is named once
                marked.repeated = (*marked.repeated, key)
        else:
            marked[key] = value
            seen.add(key)
    return marked


_MAX_REPEATED_PROBLEMS = 10


def _repeated_keys(body: bytes) -> list[tuple]:
    """The places (``("profiles", 3, "age")``) of the keys a body that parses gives twice in
    one object, object by object (an object's own before those inside it), at most
    ``_MAX_REPEATED_PROBLEMS`` of them (called only once a repeated key was found: the usual
    body is read once)."""
    found: list[tuple] = []

    def walk(value, loc: tuple) -> None:
        if len(found) >= _MAX_REPEATED_PROBLEMS:
            return
        if isinstance(value, dict):
            found.extend((*loc, key) for key in getattr(value, "repeated", ()))
            for key, item in value.items():
                walk(item, (*loc, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, (*loc, i))

    walk(json.loads(body, object_pairs_hook=_mark_repeated), ())
    return found[:_MAX_REPEATED_PROBLEMS] or [()]


# JSON strings (whose brackets do not nest anything) and everything but brackets, removed
# before counting depth; possessive quantifiers keep the scan linear on any input.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text, without parsing it.

    Linear in the body's size and done in C, so a hostile body costs milliseconds whatever its
    depth (a parser would recurse once per level).

    Examples
    --------
    >>> json_depth(b'{"a": [1, {"b": "[[["}]}'), json_depth(b"[" * 5000 + b"]" * 5000)
    (3, 5000)
    """
    import numpy as np

    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max())


def _unparsable(body: bytes) -> tuple[int, dict] | None:
    """(status, payload) for a body no parser should be trusted with, or None when it parses.

    Every exception of the parser (a RecursionError included) is the caller's malformed body,
    answered 400; a repeated key is answered 422 naming it.
    """
    # A body nests at most as deep as it has opening brackets (those inside strings included):
    # a profile has one, so the scan (a third of the gate's time per answer) is rarely needed.
    depth = json_depth(body) if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH else 0
    if depth > MAX_JSON_DEPTH:
        return 400, {
            "error": f"body: JSON nested {depth:,} levels deep; at most "
            f"{MAX_JSON_DEPTH} are accepted",
            "problems": [
                {
                    "field": "body",
                    "value": None,
                    "message": "nested too deep",
                    "accepted": f"JSON nested at most {MAX_JSON_DEPTH} levels (see /docs.json)",
                }
            ],
        }
    try:
        json.loads(body, object_pairs_hook=_refuse_duplicates)
    except _DuplicateKey:
        from recommender.service._problems import field_name

        # Named where each is (profiles[3].age), not by its key alone: in a batch of 10,000
        # profiles "age" told the sender nothing of which row to fix.
        problems = [
            {
                "field": field_name(loc)[:200],
                "value": None,
                "message": "duplicate key",
                "accepted": "each key at most once per object",
            }
            for loc in _repeated_keys(body)
        ]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return 422, {
            "error": f"{problems[0]['field']}: the key appears more than once in one object; "
            f"accepted: each key once{more}",
            "problems": problems,
        }
    except _TooManyKeys as many:
        return 400, {
            "error": f"body: {many}; at most {MAX_OBJECT_KEYS} are accepted in one object",
            "problems": [
                {
                    "field": "body",
                    "value": None,
                    "message": "too many keys in one object",
                    "accepted": f"at most {MAX_OBJECT_KEYS} keys in any one object "
                    "(see /docs.json)",
                }
            ],
        }
    except Exception as error:  # noqa: BLE001 - whatever the parser raises, the body is at fault
        # Python's own advice (a setting of the server's) is no use to the sender: the limit
        # and the number's length are what it can act on.
        said = str(error).split("; use sys.set_int_max_str_digits()")[0]
        detail = f"{type(error).__name__}: {said[:200]}"
        return 400, {
            "error": f"body: Invalid JSON ({detail}); accepted: a JSON object with "
            "the documented fields (see /docs.json)",
            "problems": [
                {
                    "field": "body",
                    "value": None,
                    "message": f"Invalid JSON ({detail})",
                    "accepted": "a JSON object with the documented fields (see /docs.json)",
                }
            ],
        }
    return None


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def _sent_as(refusal: tuple[int, dict] | None, body: bytes, headers: Mapping[str, str]):
    """A 400 refusal of a body that is not JSON, saying why when its sender can be told: it was
    sent as a form, or in UTF-16 or UTF-32 (the request models read UTF-8 alone)."""
    if refusal is None or refusal[0] != 400 or refusal[1]["problems"][0]["field"] != "body":
        return refusal
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    encoding = json.detect_encoding(body[:4])
    if media in _FORMS:
        reason = f"the body was sent as a form ({media}): send the fields as JSON"
    elif encoding.startswith("utf-16") or encoding.startswith("utf-32"):
        reason = f"the body is {encoding.upper()} text: send it as UTF-8"
    elif body.startswith(b"\xef\xbb\xbf"):
        # What Windows tools write first (PowerShell 5's UTF8, Notepad before 2019): JSON
        # sent over a network has none (RFC 8259), and the parser's "line 1 column 1" hid it.
        reason = "the body starts with a UTF-8 byte-order mark (bytes EF BB BF): send it without"
    elif not _is_utf8(body):
        reason = "the body is not UTF-8 text (Latin-1 or Windows-1252, say): send it as UTF-8"
    else:
        return refusal
    status, payload = refusal
    first = {**payload["problems"][0]}
    first["message"] = f"{first['message']}; {reason}"
    return status, {
        "error": f"{payload['error']}; {reason}",
        "problems": [first, *payload["problems"][1:]],
    }


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# A \uD800-\uDFFF escape. Python's parser reads an unpaired one into a string (a lone
# surrogate); pydantic's refuses the body with its line and column alone, never the field.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_SURROGATE_PROBLEMS = 10


def _lone_surrogates(body: bytes, accepted) -> tuple[int, dict] | None:
    """The 400 of a parsed body holding unpaired surrogate escapes, naming the field of each
    (at most ``_MAX_SURROGATE_PROBLEMS``) and the byte of its escape; None when it holds none
    (a body without such an escape, the usual case, costs one search)."""
    if not _SURROGATE_ESCAPE.search(body):
        return None
    from recommender.service._problems import lone_surrogate_problem

    offsets = iter(_lone_escape_offsets(body))
    problems = []
    for loc, text, key in _lone_surrogate_strings(json.loads(body), ()):
        # Strings come in the body's order; each holds one or more of the lone escapes.
        found = [next(offsets, None) for _ in range(_surrogate_count(text))]
        problems.append(lone_surrogate_problem(loc, text, found[0], key=key, accepted=accepted))
        if len(problems) == _MAX_SURROGATE_PROBLEMS:
            break
    if not problems:
        return None
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return 400, {
        "error": f"{first['field']}: {first['message']}; accepted: {first['accepted']}{more}",
        "problems": problems,
    }


def _surrogate_count(text: str) -> int:
    return len(_SURROGATE.findall(text))


def _lone_surrogate_strings(value, loc: tuple):
    """``(loc, text, is_key)`` of each string holding a lone surrogate, in document order."""
    if isinstance(value, str):
        if _surrogate_count(value):
            yield loc, value, False
    elif isinstance(value, dict):
        for name, item in value.items():
            if _surrogate_count(name):
                yield loc, name, True
            yield from _lone_surrogate_strings(item, (*loc, name))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _lone_surrogate_strings(item, (*loc, i))


def _lone_escape_offsets(body: bytes) -> list[int]:
    """Byte offsets of the unpaired surrogate escapes of a body that parsed: an escape after
    an odd run of backslashes is text (``\\\\ud800``), and a high one directly followed by
    a low one is a pair."""
    offsets, paired_until = [], -1
    for match in _SURROGATE_ESCAPE.finditer(body):
        start = match.start()
        run = 0
        while start - run > 0 and body[start - run - 1] == 0x5C:  # a backslash
            run += 1
        if run % 2 or start < paired_until:
            continue
        code = int(match.group()[2:], 16)
        after = _SURROGATE_ESCAPE.match(body, match.end())
        if code < 0xDC00 and after and int(after.group()[2:], 16) >= 0xDC00:
            paired_until = after.end()
            continue
        offsets.append(start)
    return offsets


def _invalid(model, body: bytes, known, accepted) -> tuple[int, dict] | None:
    """(status, payload) for a body its route's model refuses, naming every problem."""
    try:
        model.model_validate_json(body)
    except ValidationError as error:
        from recommender.service._problems import problems_from

        problems = problems_from(error, known=known, accepted=accepted)
        status = 400 if any(p["message"].startswith("Invalid JSON") for p in problems) else 422
        first = problems[0]
        return status, {
            "error": f"{first['field']}: {first['message']}; accepted: {first['accepted']}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            "problems": problems,
        }
    return None
