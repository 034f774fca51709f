"""Checking request bodies against the served model's profile and the catalog.

A part of :class:`~recommender.service._engine.RecommendationEngine` (mixed in): it reads the
engine's ``profiles`` (what a profile must hold for its model) and ``catalog``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import ValidationError

from recommender.errors import InputError
from recommender.service._problems import MAX_UNKNOWN_FIELDS, too_many_fields

__all__ = ["RequestChecking"]


class RequestChecking:
    """``check_row``, ``check_rows`` and ``check_offered`` of the recommendation engine."""

    def check_row(self, raw, *, prefix: str = "") -> dict:
        """Validate one request body (a mapping) against this model's profile and the catalog.

        Raises
        ------
        InputError
            With ``problems`` naming field, value and what is accepted.
        """
        many = too_many_fields(raw, self.profiles.fields, prefix=prefix)
        if many:
            raise InputError(_summary(many), problems=many)
        try:
            row = self.profiles.validate(raw)
        except ValidationError as error:
            problems = self.profiles.problems(error, prefix=prefix)
            raise InputError(_summary(problems), problems=problems) from None
        self.check_offered(row, prefix=prefix)
        return row

    def check_rows(self, raws: Sequence, *, field: str = "profiles") -> tuple[list, list, list]:
        """Validate many request bodies: ``(valid rows, their positions, errors)``.

        One pydantic call checks the whole list when it is valid (the usual case); otherwise
        every entry is checked on its own so that each error names its entry.
        """
        limit = len(self.profiles.fields) + MAX_UNKNOWN_FIELDS
        try:
            # A row over the limit is refused on its own, before any validator reads it.
            if any(isinstance(raw, Mapping) and len(raw) > limit for raw in raws):
                raise InputError("a row holds too many fields")
            rows = self.profiles.validate_many(raws)
            for i, row in enumerate(rows):
                self.check_offered(row, prefix=f"{field}[{i}]")
            return rows, list(range(len(rows))), []
        except (ValidationError, InputError):
            pass
        valid, index, errors = [], [], []
        for i, raw in enumerate(raws):
            try:
                valid.append(self.check_row(raw, prefix=f"{field}[{i}]"))
                index.append(i)
            except InputError as error:
                errors.append({"index": i, "error": str(error), "problems": error.problems})
        return valid, index, errors

    def check_offered(self, row: Mapping, *, prefix: str = "") -> None:
        """Refuse arm ids the catalog does not know (the rest of the row is already valid)."""
        offered = row.get("offered")
        if not offered:
            return
        known = self.catalog.arm_ids
        problems = [
            {
                "field": f"{prefix}{'.' if prefix else ''}offered[{i}]",
                "value": arm,
                "accepted": f"an arm of catalog {self.catalog.version}: {', '.join(known)}",
                "message": "unknown arm",
            }
            for i, arm in enumerate(offered)
            if arm not in known
        ]
        if problems:
            raise InputError(_summary(problems), problems=problems)


def _summary(problems: list[dict]) -> str:
    first = problems[0]
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return (
        f"{first['field']}: {first['value']!r} is not accepted; accepted: {first['accepted']}{more}"
    )
