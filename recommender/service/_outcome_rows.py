"""What an outcome row is, and how a refused submission names its rows.

The fields a program sends for one follow-up measurement (:data:`OUTCOME_FIELDS`,
:class:`OutcomeRow`: the scores' ranges, a time that is text with its zone, read in UTC), the
refusal of a submission as a whole (:class:`OutcomeRefused`), and the wording of each problem
it carries: the row and field, what was sent (never a person id), what would be accepted, and
what a time written without a zone was read as. Checking the rows against the log and storing
them is :func:`recommender.service._outcomes.record_outcomes`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from recommender.cohort import PERSON_ID_MAX_LENGTH, RANGES
from recommender.errors import InputError
from recommender.service._audit_export import as_utc
from recommender.service._requests import _HASHABLE_ID, _NUMBER_ONLY, accepted_text


OUTCOME_FIELDS = (
    "person_id",
    "measured_at",
    "arm_taken",
    "ee_followup",
    "dp_followup",
    "pa_followup",
)


_WholeNumber = Annotated[int, _NUMBER_ONLY]


def _score(name: str, description: str):
    low, high = RANGES[name]
    return Field(ge=int(low), le=int(high), description=f"{description} ({int(low)}-{int(high)})")


class OutcomeRow(BaseModel):
    """One follow-up measurement of one person."""

    model_config = ConfigDict(extra="forbid")

    person_id: Annotated[str, *_HASHABLE_ID] = Field(
        min_length=1,
        max_length=PERSON_ID_MAX_LENGTH,
        description="The id sent with the recommendation (hashed, never stored).",
    )
    measured_at: datetime = Field(
        description="When the follow-up survey was answered (ISO 8601; UTC when no zone is given)."
    )

    @field_validator("measured_at", mode="before")
    @classmethod
    def _not_a_number(cls, stamp):
        # pydantic reads a number (or text of digits alone) as seconds since 1970: an Excel
        # serial day (46000) became 1970-01-01T12:46:40, a compact 20260312 a day in 1970.
        text = stamp.strip() if isinstance(stamp, str) else None
        number = isinstance(stamp, (int, float)) and not isinstance(stamp, bool)
        if number or (text and text.replace(".", "", 1).isdigit()):
            raise ValueError(
                "a number is not read as a time (an Excel serial day or seconds since 1970 "
                "would each be misread); write the date, and the time with its zone, as text"
            )
        return stamp

    @field_validator("measured_at")
    @classmethod
    def _in_utc(cls, stamp: datetime) -> datetime:
        # Stored and compared in UTC: a time the calendar cannot hold there is refused here.
        try:
            return as_utc(stamp)
        except OverflowError:
            raise ValueError("out of range once converted to UTC (years 1 to 9999 only)") from None

    arm_taken: str = Field(
        min_length=1,
        max_length=64,
        description="The arm the person actually took ('none' = usual care).",
    )
    # JSON numbers, as the profile routes take them: 20.0 is 20 (JSON does not tell them
    # apart), 20.5, "20" and true are refused.
    ee_followup: _WholeNumber = _score("ee_followup", "Emotional Exhaustion at follow-up")
    dp_followup: _WholeNumber = _score("dp_followup", "Depersonalization at follow-up")
    pa_followup: _WholeNumber = _score("pa_followup", "Personal Accomplishment at follow-up")


class OutcomeRefused(InputError):
    """The submission was refused as a whole; ``status`` is 409 for duplicates, else 422."""

    def __init__(self, message: str, *, problems: list, status: int):
        super().__init__(message, problems=problems)
        self.status = status

    def refused_rows(self) -> tuple[int, int]:
        """How many rows the problems name, and how many of those as duplicates (a problem of
        the whole submission, such as an empty one, names no row)."""
        rows, duplicates = set(), set()
        for problem in self.problems:
            found = re.match(r"outcomes\[(\d+)\]", str(problem.get("field", "")))
            if found:
                rows.add(found[1])
                if str(problem.get("message", "")).startswith("duplicate"):
                    duplicates.add(found[1])
        return len(rows), len(duplicates)


def _problem(row: int, name: str, value, accepted: str, message: str) -> dict:
    return {
        "field": f"outcomes[{row}].{name}",
        "value": value,
        "accepted": accepted,
        "message": message,
    }


def _duplicate(i: int, request_id: str, same: bool, row_before: int | None) -> dict:
    if row_before is not None:  # nothing is recorded yet: one recommendation twice here
        message = (
            f"duplicate: outcomes[{row_before}] of this submission gives "
            f"{'the same' if same else 'a different'} outcome for this person's recommendation"
        )
    elif same:
        message = "duplicate: this outcome is already recorded"
    else:
        message = (
            "duplicate: a different outcome is already recorded for this person's "
            'recommendation; to replace it, send the row as a correction ("correct": true '
            "beside outcomes; recommender outcomes import --correct)"
        )
    return _problem(
        i,
        "person_id",
        "(hidden)",
        "one outcome per served recommendation; a different one only as a correction",
        f"{message} (request {request_id})",
    )


def _row_number(problem: dict) -> int:
    return int(re.match(r"outcomes\[(\d+)\]", problem["field"])[1])


def _read_as_utc(raw) -> str:
    """What a refusal of ``measured_at`` by its time adds when the time was written without a
    zone: read as UTC, a program's local time moves by its offset (into the future, or before
    the recommendation), and a date alone is midnight UTC, before an answer given that day."""
    stamp = raw.get("measured_at") if isinstance(raw, Mapping) else None
    if not isinstance(stamp, str):
        return ""
    text = stamp.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return ""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return (
            f" ({text!r} is a date alone, read as midnight UTC: give the time the survey was "
            f"answered, with its zone, e.g. {text}T16:30:00+01:00)"
        )
    if parsed.tzinfo is None:
        return (
            f" ({text!r} has no zone and is read as UTC: give the zone of the program's clock, "
            f"e.g. {parsed.isoformat()}+01:00, or write the time in UTC with Z)"
        )
    return ""


def _echoed(name: str, error: dict):
    """The value of a refused field as the problem may show it: never a person id, and never
    anything that may hold one (a missing field's whole row, an unknown column, a line that is
    not an object)."""
    if name == "person_id":
        return "(hidden)"
    value = error.get("input")
    if error["type"] == "missing":
        return None
    if name not in OUTCOME_FIELDS or not isinstance(value, (int, float, str, type(None))):
        return "(not shown)"
    return value


def _accepted(name: str) -> str:
    if name in RANGES:
        low, high = RANGES[name]
        return f"a whole number from {int(low)} to {int(high)}"
    if name in OUTCOME_FIELDS:
        return accepted_text(name)
    return f"only the fields {', '.join(OUTCOME_FIELDS)}"


def _summary(problems: list[dict]) -> str:
    first = problems[0]
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return f"{first['field']}: {first['message']}; accepted: {first['accepted']}{more}"
