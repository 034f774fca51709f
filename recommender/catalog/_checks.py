"""The checking machinery the catalog loader shares: value kinds, one loop over a table of
fields, and a problem list whose every message names the entry, the field, the value found and
what would be accepted."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from recommender._citations import STUDY_CITATION

__all__ = []  # private to recommender.catalog

# An id becomes part of column names (effect_<id>, true_effect_<id>), hence the pattern.
ARM_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

_TEXT = ("text", lambda v: isinstance(v, str) and v.strip() != "")
_INT = ("whole number", lambda v: isinstance(v, int) and not isinstance(v, bool))
_NUMBER = (
    "number",
    lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
)
_BOOL = ("true or false", lambda v: isinstance(v, bool))
_LIST = ("list", lambda v: isinstance(v, list))
_MAPPING = ("mapping", lambda v: isinstance(v, Mapping))
_YEAR = (
    "year (whole number)",
    lambda v: isinstance(v, int) and not isinstance(v, bool) and 1900 <= v <= 2100,
)
_BOOL_REQ = _BOOL
_PAIR = (
    "[lower, upper] (two numbers)",
    lambda v: isinstance(v, list) and len(v) == 2 and all(_NUMBER[1](x) for x in v),
)


class _Problems(list):
    def add(self, entry: str, field: str | None, value, rule: str, accepted: str):
        where = f"{entry}.{field}" if field else entry
        message = f"{where}: {rule}"
        if value is not _ABSENT:
            message += f"; found {_shown(value)}"
        message += f"; accepted: {accepted}"
        self.append(
            {
                "entry": entry,
                "field": field,
                "value": None if value is _ABSENT else value,
                "rule": rule,
                "accepted": accepted,
                "message": message,
            }
        )


_ABSENT = object()
# A value longer than this is cut in messages: a file that is not a catalog at all (a whole
# text read as one YAML scalar) must not be printed back in full.
_SHOWN = 80


def _shown(value) -> str:
    text = repr(value)
    if len(text) <= _SHOWN:
        return text
    return f"{text[: _SHOWN - 20]}... ({len(text):,} characters)"


def _check_fields(data, fields, entry: str, problems: _Problems, *, extension=None) -> dict:
    """Presence, unknown names and types; returns the fields that passed. Names starting with
    ``extension`` (when given) are allowed and ignored."""
    if not isinstance(data, Mapping):
        problems.add(entry, None, data, "wrong type", "a mapping of field: value")
        return {}
    good = {}
    for name in data:
        if name not in fields and not (extension and str(name).startswith(extension)):
            problems.add(entry, str(name), data[name], "unknown field", ", ".join(fields))
    for name, ((kind, test), required, nullable) in fields.items():
        if name not in data:
            if required:
                problems.add(entry, name, _ABSENT, "missing field", f"a {kind}")
            continue
        value = data[name]
        if value is None and nullable:
            good[name] = None
        elif value is None or not test(value):
            problems.add(
                entry, name, value, "wrong type", f"a {kind}" + (" or null" if nullable else "")
            )
        else:
            good[name] = value
    return good


def _members(values, allowed, entry, field, singular, problems) -> tuple[str, ...] | None:
    if values is None:
        return None
    bad = [v for v in values if v not in allowed]
    for value in bad:
        problems.add(entry, field, value, f"unknown {singular}", ", ".join(allowed))
    if not values:
        problems.add(
            entry,
            field,
            values,
            "empty list",
            f"one or more of {', '.join(allowed)}, or null for any",
        )
    return None if bad or not values else tuple(dict.fromkeys(values))


def _check_assumption(text, entry, field, problems) -> None:
    """An assumption never borrows a study's authority: its text names no study."""
    cited = STUDY_CITATION.search(text) if isinstance(text, str) else None
    if cited is not None:
        problems.add(
            entry,
            field,
            text,
            "an assumption naming a study",
            f"a text naming no study (found {cited.group(0)!r}); if the figure comes from the "
            "study, mark it as not an assumption",
        )
