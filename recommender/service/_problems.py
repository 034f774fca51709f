"""Problems: what is wrong with a request, in the API's one shape (field, value, accepted).

Validation errors are turned into problems that name the field, the value received and what is
accepted; library errors (row, column, rule) are put in the same shape.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from recommender.cohort import MBI_ITEMS_REFUSED, PRACTICE_ACCEPTED, looks_like_mbi_item
from recommender.cohort import unhashable_id_problem
from recommender.service._requests import KEYED_FIELDS, accepted_for, accepted_text

__all__ = [
    "Problem",
    "ErrorResponse",
    "problems_from",
    "as_problems",
    "too_many_fields",
    "lone_surrogate_problem",
    "field_name",
    "MBI_ITEM_MESSAGE",
    "MAX_UNKNOWN_FIELDS",
]

_MAX_VALUE_CHARS = 120
# A row (a batch's or plan's profile, an outcome) holding this many keys more than its fields
# is refused as a whole, its unknown fields counted rather than each named: the validator spends
# about 15 us and the answer a problem on each, and a batch holds 10,000 rows.
MAX_UNKNOWN_FIELDS = 8
# An unknown field named like an MBI item's answer: what the service takes instead is said.
MBI_ITEM_MESSAGE = "MBI item answers are not accepted"


class Problem(BaseModel):
    """One thing wrong with a request."""

    field: str = Field(description="Where: field name, list index or 'body'.")
    value: Any = Field(None, description="The value received (shortened when long).")
    accepted: str = Field(description="What would be accepted there.")
    message: str = Field("", description="The validator's own message.")


class ErrorResponse(BaseModel):
    """A request the service will not answer, with every problem found."""

    error: str = Field(description="Summary.")
    problems: list[Problem] = Field(default_factory=list, description="Each problem.")
    crisis_results: list[dict] = Field(
        default_factory=list,
        description="The crisis answers given all the same, each with the position of its "
        "entry ('index'; 0 for /recommend's one profile) and its 'answer': a batch's or "
        "plan's refused or unanswered entries, and a refused caller's (401, 403) flagged "
        "profiles, which are recorded nowhere. A flag seen only in the text of a body that "
        "could not be read is answered once for the request, for every role ('index' null on "
        "a batch or plan, whose flagged entry cannot be told).",
    )


def _short(value: Any) -> Any:
    # Echo the value so the caller can find it, but never a megabyte of it.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):  # JSON has no NaN or Infinity: name them instead
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray)):
        return _short(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, int):
        return value if abs(value) < 10**15 else _short(str(value))
    if isinstance(value, str):
        return value if len(value) <= _MAX_VALUE_CHARS else value[:_MAX_VALUE_CHARS] + "..."
    shown = value
    if isinstance(value, (list, tuple)) and len(value) > _MAX_VALUE_CHARS:
        # Its first items alone fill the shown text (each takes a character and a comma at
        # least): a million of them are not written out first.
        shown = list(value[:_MAX_VALUE_CHARS])
    try:
        text = json.dumps(shown, allow_nan=False)
    except (TypeError, ValueError):
        text = repr(shown)
    else:
        if len(text) <= _MAX_VALUE_CHARS:
            return value  # small lists and objects are echoed as they came
    return text if len(text) <= _MAX_VALUE_CHARS else text[:_MAX_VALUE_CHARS] + "..."


# Refusals of a value sent where an object or a list belongs: a profile, an outcome row, the
# body, a batch's list of profiles. What came instead is most often a person id or a list of ids.
_NOT_THE_CONTAINER = frozenset({"model_type", "model_attributes_type", "dict_type", "list_type"})


def _echoed(names: list[str], kind: str, value):
    """A refused value as a problem shows it: never a person id, nor an unknown field's value
    (a name or a remark about someone), nor what stands where a whole record belongs, nor the
    body itself (not JSON: a byte-order mark, half an emoji); error bodies are often logged by
    clients and gateways, and the field with what is accepted says what to fix."""
    if names and names[-1] in ("person_id", "person_ids"):
        return "(hidden)"
    if kind == "extra_forbidden" or kind in _NOT_THE_CONTAINER:
        return "(not shown)"
    if not names or kind.startswith("json"):  # the body as sent: its first field is an id
        return "(not shown)"
    if isinstance(value, (list, tuple)) and any(isinstance(v, (dict, list)) for v in value):
        # records refused as a whole (more than a batch takes): the first begins with its id
        return f"(a list of {len(value):,} items; not shown)"
    return _short(value)


def field_name(loc: tuple) -> str:
    """Where ``loc`` is in a body, as problems name it.

    >>> field_name(("profiles", 3, "age")), field_name(())
    ('profiles[3].age', 'body')
    """
    return _field_name(loc, "")


def _field_name(loc: tuple, prefix: str) -> str:
    name = prefix
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += ("." if name else "") + str(part)
    return name or "body"


def problems_from(
    error: ValidationError,
    *,
    prefix: str = "",
    known: tuple[str, ...] = (),
    accepted: Mapping[str, str] | None = None,
) -> list[dict]:
    """Turn a pydantic error into problems naming field, value and what is accepted.

    ``prefix`` is put before every field name (``profiles[3]``); ``known`` lists the fields
    of the model, shown when an unknown field is sent; ``accepted`` describes fields beyond
    the data contract's (a served model's extra features, the ``/allocate`` fields).
    """
    accepted = accepted or {}
    problems = []
    for item in error.errors(include_url=False):
        loc = tuple(item.get("loc", ()))
        names = [part for part in loc if isinstance(part, str)]
        kind = item.get("type", "")
        message = item.get("msg", "")
        if kind == "extra_forbidden" and names and looks_like_mbi_item(names[-1]):
            text, message = MBI_ITEMS_REFUSED, MBI_ITEM_MESSAGE
        elif kind == "extra_forbidden":
            text = (
                "no such field; known fields: " + ", ".join(known)
                if known
                else "no fields: this request takes an empty body or {}"
            )
        elif kind.startswith("json") or not names:
            text = "a JSON object with the documented fields (see /docs.json)"
        elif kind == "practice_too_early":
            text = PRACTICE_ACCEPTED  # the field's own range holds; the rule joins it to age
        else:
            text = _accepted_at(names, accepted)
        if kind in ("model_type", "model_attributes_type"):
            # pydantic names the class ("... or instance of ProfileRequest"), which no client
            # sends: an object is what is accepted.
            message = "Input should be a JSON object"
        value = None if kind == "missing" else _echoed(names, kind, item.get("input"))
        problems.append(
            {
                "field": _field_name(loc, prefix),
                "value": value,
                "accepted": text,
                "message": message,
            }
        )
    return problems


def too_many_fields(raw, known: Collection[str], *, prefix: str = "") -> list[dict]:
    """The one problem of a row holding more than ``MAX_UNKNOWN_FIELDS`` keys beyond the
    ``known`` fields' count (no problem otherwise: the validator names each unknown field).

    Examples
    --------
    >>> too_many_fields({"a": 1, "b": 2}, ("a",))
    []
    >>> too_many_fields({f"x{i}": i for i in range(12)}, ("a", "b"), prefix="profiles[3]")[0][
    ...     "message"]
    '12 fields this row does not take (at most 8 more than its 2 fields are read)'
    """
    if not isinstance(raw, Mapping) or len(raw) <= len(known) + MAX_UNKNOWN_FIELDS:
        return []
    unknown = sum(1 for key in raw if key not in known)
    return [
        {
            "field": prefix or "body",
            "value": "(not shown)",
            "accepted": "no such field; known fields: " + ", ".join(known),
            "message": f"{unknown:,} fields this row does not take (at most "
            f"{MAX_UNKNOWN_FIELDS} more than its {len(known)} fields are read)",
        }
    ]


# How JSON writes a character beyond U+FFFF; an escape of half of one alone is no text.
_PAIRED_ESCAPES = (
    "a \\uD800-\\uDBFF escape only directly followed by a \\uDC00-\\uDFFF one (a character "
    "beyond U+FFFF as its UTF-16 pair), or the character itself in UTF-8"
)


def lone_surrogate_problem(
    loc: tuple, text: str, offset: int | None, *, key: bool = False, accepted=None
) -> dict:
    """The problem of a JSON string (at ``loc``; a key of the object there when ``key``)
    holding an unpaired surrogate escape, the first at byte ``offset`` of the body: Python's
    parser reads it, pydantic's refuses the body without saying where.

    Examples
    --------
    >>> problem = lone_surrogate_problem(("profiles", 3, "person_id"), "p\\ud800", 52)
    >>> problem["field"], problem["value"]
    ('profiles[3].person_id', '(hidden)')
    >>> problem["message"]
    'Invalid JSON: character 2 is U+D800, a lone surrogate, which is not text (the escape at byte 52 of the body)'
    """
    names = [part for part in loc if isinstance(part, str)]
    where = "" if offset is None else f" (the escape at byte {offset:,} of the body)"
    subject = "a key of this object: its " if key else ""
    if key or not names:
        text_accepted = "a JSON object with the documented fields (see /docs.json)"
    else:
        text_accepted = _accepted_at(names, accepted or {})
    return {
        "field": _field_name(loc, ""),
        # Not text, so never echoed: the field and the byte say where it is.
        "value": _echoed(names, "json_invalid", text),
        "accepted": f"{text_accepted}; as JSON text, {_PAIRED_ESCAPES}",
        "message": f"Invalid JSON: {subject}{unhashable_id_problem(text)}{where}",
    }


def _accepted_at(names: list[str], accepted: Mapping[str, str]) -> str:
    # The innermost field the API describes: in 'capacity.coaching', the arm id is a key
    # of 'capacity', which says what its values may be; a key is never read as a field
    # ('capacity.age' is a place count, not an age).
    for position in reversed(range(len(names))):
        if position and names[position - 1] in KEYED_FIELDS:
            continue
        text = accepted.get(names[position]) or accepted_text(names[position])
        if text:
            return text
    return accepted_for(names[-1])


def as_problems(items) -> list[dict]:
    """Problems in this API's shape (field, value, accepted, message), whatever raised them.

    Library errors (a cohort or feature-frame check) report ``row``, ``column`` and ``rule``.
    """
    problems = []
    for item in items or []:
        item = dict(item) if isinstance(item, dict) else {"message": str(item)}
        if "field" not in item:
            where = [
                f"row {item['row']}" if item.get("row") is not None else "",
                str(item.get("column") or ""),
            ]
            item = {
                "field": ", ".join(w for w in where if w) or "body",
                "value": item.get("value"),
                "accepted": str(item.get("rule", "")),
                "message": str(item.get("message", "")),
            }
        field = str(item["field"])
        problems.append(
            {
                "field": field,
                "value": "(hidden)" if field.endswith("person_id") else _short(item.get("value")),
                "accepted": str(item.get("accepted", "")),
                "message": str(item.get("message", "")),
            }
        )
    return problems
