"""Request models of the HTTP API, built from the data contract, and what each field accepts.

The profile fields, their ranges and their categories come from :mod:`recommender.cohort`, so
the API accepts exactly what the contract accepts. Unknown fields are rejected.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from recommender.cohort import CATEGORIES, PROFILE_COLUMNS, RANGES
from recommender.cohort import INTEGER_COLUMNS, PERSON_ID_ACCEPTED, PERSON_ID_MAX_LENGTH
from recommender.cohort import person_id_problem, unhashable_id_problem
from recommender.cohort import PRACTICE_START_AGE, practice_begins_too_early, practice_problem
from recommender.policy import BUDGET_ACCEPTED, MAX_CAPACITY
from recommender.service._audit_export import SINCE_ACCEPTED

__all__ = [
    "ProfileRequest",
    "ServedProfileRequest",
    "BatchRequest",
    "OutcomesRequest",
    "ErasureRequest",
    "ReloadRequest",
    "profile_list_adapter",
    "example_profile",
    "accepted_for",
    "accepted_text",
    "MAX_BATCH_ROWS",
    "STORED_ID_MAX_LENGTH",
    "KEYED_FIELDS",
    "PROFILE_FIELDS",
    "ProfileEntry",
]

MAX_BATCH_ROWS = 10_000
_MAX_OFFERED = 64
# The longest person id whose hash any entry stores: a crisis answer needs no valid profile and
# keeps the first this many characters of whatever id it came with (the other entries take
# PERSON_ID_MAX_LENGTH at most). An erasure asked for a longer id could find no one.
STORED_ID_MAX_LENGTH = 1000
# Fields that take a JSON true or false and nothing else (StrictBool).
_TRUE_OR_FALSE = frozenset({"crisis_risk", "confident_only", "correct", "dry_run"})
# Fields holding an object whose keys are the caller's names (arm ids, roles): a key there is
# no field, even one named like a field ("age"), and the object's own text says what it takes.
KEYED_FIELDS = frozenset({"capacity", "floors"})

_DESCRIPTIONS = {
    "person_id": "Pseudonymous id of the person (never a name, e-mail or staff number); stored "
    "only as a salted hash.",
    "age": "Age in years.",
    "gender": "Gender.",
    "role": "Role; 'app' is an advanced practice provider (nurse practitioner, physician "
    "assistant).",
    "specialty": "Specialty.",
    "setting": "Practice setting.",
    "years_in_practice": "Years in practice (0 for trainees); at most age - "
    f"{PRACTICE_START_AGE}, as no one practises before {PRACTICE_START_AGE}.",
    "weekly_hours": "Usual working hours a week.",
    "ee": "MBI-HSS Emotional Exhaustion subscale score (9 items scored 0-6).",
    "dp": "MBI-HSS Depersonalization subscale score (5 items scored 0-6).",
    "pa": "MBI-HSS Personal Accomplishment subscale score (8 items scored 0-6; higher is better).",
}


def example_profile() -> dict:
    """A valid ``/recommend`` body (the README's and ``serve --print-example``'s example)."""
    return {
        "person_id": "p-000123",
        "age": 41,
        "gender": "female",
        "role": "physician",
        "specialty": "internal_medicine",
        "setting": "academic",
        "years_in_practice": 11.0,
        "weekly_hours": 58.0,
        "ee": 31,
        "dp": 11,
        "pa": 34,
        "offered": ["coaching", "mindfulness", "peer_group"],
    }


def accepted_for(field: str) -> str:
    """What the API accepts for a request field, in words."""
    return accepted_text(field) or "see the OpenAPI document (/docs.json)"


def accepted_text(field: str) -> str | None:
    """What the API accepts for a request field or query parameter, in words; ``None`` for a
    field it does not describe (every field of every route is described: a test walks them)."""
    if field == "person_id":
        return PERSON_ID_ACCEPTED
    if field in CATEGORIES:
        return "one of " + ", ".join(CATEGORIES[field])
    if field in RANGES:
        lo, hi = RANGES[field]
        kind = "an integer" if field in INTEGER_COLUMNS else "a number"
        return f"{kind} from {lo:g} to {hi:g}"
    if field in _TRUE_OR_FALSE:
        return "true or false"
    if field == "offered":
        return f"a list of 1 to {_MAX_OFFERED} arm ids of the intervention catalog"
    if field == "profiles":
        return f"a list of 1 to {MAX_BATCH_ROWS:,} profile objects"
    if field == "outcomes":
        return (
            f"a list of 1 to {MAX_BATCH_ROWS:,} outcome objects, each with person_id, "
            "measured_at, arm_taken, ee_followup, dp_followup and pa_followup"
        )
    if field == "person_ids":
        return (
            f"a list of 1 to {MAX_BATCH_ROWS:,} person ids, each the person_id as the program "
            f"sent it to the service: a string of 1 to {STORED_ID_MAX_LENGTH:,} characters, not "
            "only spaces (an id the person_id rule refuses now, stored before it, is looked for "
            "all the same)"
        )
    return _allocation_text(field) or _outcome_text(field) or _export_text(field)


def _allocation_text(field: str) -> str | None:
    # /allocate's own fields (its profiles are /recommend_batch's).
    if field == "budget":
        return BUDGET_ACCEPTED.replace("none", "null")
    if field == "capacity":
        return (
            "an object mapping arm ids of the intervention catalog to whole numbers of places "
            f">= 0 and at most {MAX_CAPACITY:,} (0: not offered this cycle)"
        )
    if field == "floors":
        return (
            f"an object mapping roles ({', '.join(CATEGORIES['role'])}) to the minimum share of "
            "that role's people given an arm, from 0 to 1"
        )
    return None


def _outcome_text(field: str) -> str | None:
    # The fields of an outcome row that are no profile field (its scores are in RANGES).
    if field == "measured_at":
        return (
            "an ISO 8601 date or time, as text (a number is not read as a time), UTC unless it "
            "carries an offset, e.g. 2027-06-01 or 2027-06-01T09:00:00+00:00"
        )
    if field == "arm_taken":
        return "an arm id of the intervention catalog (usual care included)"
    if field == "Idempotency-Key":  # the route's one header of its own
        from recommender.service._outcome_keys import KEY_ACCEPTED

        return KEY_ACCEPTED
    return None


def _export_text(field: str) -> str | None:
    # GET /audit/export's query parameters.
    if field == "since":
        return SINCE_ACCEPTED
    if field == "table":
        # The tables live with their exports, whose module reads the store: imported when a
        # refusal asks, not with the request models.
        from recommender.service._outcome_log import EXPORT_TABLES_ACCEPTED

        return EXPORT_TABLES_ACCEPTED
    return None


def _profile_field(name: str):
    description = f"{_DESCRIPTIONS.get(name, name)} Accepted: {accepted_for(name)}."
    if name == "person_id":
        return (
            Annotated[str, *_PERSON_ID],
            Field(
                min_length=1,
                max_length=PERSON_ID_MAX_LENGTH,
                description=description,
                examples=["p-000123"],
            ),
        )
    if name in CATEGORIES:
        return (
            Literal[CATEGORIES[name]],
            Field(description=description, examples=[CATEGORIES[name][0]]),
        )
    lo, hi = RANGES[name]
    if name in INTEGER_COLUMNS:
        return (
            Annotated[int, _NUMBER_ONLY],
            Field(ge=int(lo), le=int(hi), description=description, examples=[int((lo + hi) // 2)]),
        )
    return (
        Annotated[float, _NUMBER_ONLY],
        Field(
            ge=lo,
            le=hi,
            allow_inf_nan=False,
            description=description,
            examples=[float((lo + hi) // 2)],
        ),
    )


def _number_only(value):
    # Lax parsing would read "41" as 41 and true as 1; a number field takes JSON numbers only
    # (41 for a float, and 41.0 for an integer, still are: JSON does not tell them apart).
    if isinstance(value, (str, bytes, bool)):
        kind = "true or false" if isinstance(value, bool) else "text"
        raise PydanticCustomError(
            "number_type", "Input should be a JSON number, not {kind}", {"kind": kind}
        )
    return value


_NUMBER_ONLY = BeforeValidator(_number_only)


def _offered_not_too_long(value):
    # pydantic checks a list's length only after each of its items: a batch entry offering a
    # million numbers cost a million item errors before the one error it reports, this one.
    if isinstance(value, list) and len(value) > _MAX_OFFERED:
        raise PydanticCustomError(
            "too_long",
            "List should have at most {max_length} items, not {actual_length}",
            {"field_type": "List", "max_length": _MAX_OFFERED, "actual_length": len(value)},
        )
    return value


def _not_blank(value: str) -> str:
    # A fixed-width export writes a missing id as spaces: all such people would share one
    # hash, and validate reads such a cell as missing.
    if not value.strip():
        raise PydanticCustomError("blank_id", "String should hold more than spaces")
    return value


def _person_id(value: str) -> str:
    # The data contract's one rule (recommender.cohort.person_id_problem); the message names the
    # offending character by its code point, never the id.
    problem = person_id_problem(_not_blank(value))
    if problem:
        raise PydanticCustomError(
            "person_id_characters", "person_id {problem}", {"problem": problem}
        )
    return value


def _hashable_id(value):
    # Before pydantic's own check, whose words for a lone surrogate (JSON's "\ud800", read by a
    # file import) say nothing of which character. Such an id was never stored: refused at
    # every entry, outcome rows included, which apply the rest of the rule only to ids never
    # stored (an id stored before the rule must still link: record_outcomes).
    problem = unhashable_id_problem(value) if isinstance(value, str) else None
    if problem:
        raise PydanticCustomError(
            "person_id_characters", "person_id {problem}", {"problem": problem}
        )
    return value


_NOT_BLANK = AfterValidator(_not_blank)
_PERSON_ID = (BeforeValidator(_hashable_id), AfterValidator(_person_id))
_HASHABLE_ID = (BeforeValidator(_hashable_id), _NOT_BLANK)


def _practice_began_in_time(years: float, info: ValidationInfo) -> float:
    # The data contract's rule across age and years_in_practice (recommender.cohort), read
    # once both are valid: an invalid age is refused on its own, not twice.
    age = info.data.get("age")
    if age is not None and practice_begins_too_early(age, years):
        raise PydanticCustomError(
            "practice_too_early", "{problem}", {"problem": practice_problem(age, years)}
        )
    return years


_STRICT = ConfigDict(extra="forbid")

ProfileRequest = create_model(
    "ProfileRequest",
    __config__=_STRICT,
    __doc__="One person's profile (the data contract's profile columns) and what the program "
    "can offer.",
    __validators__={
        "_practice_began_in_time": field_validator("years_in_practice")(_practice_began_in_time)
    },
    **{name: _profile_field(name) for name in PROFILE_COLUMNS},
    # Strict: only true or false; "yes", 1 or "false" would be guesses about a crisis flag.
    crisis_risk=(
        StrictBool,
        Field(
            False,
            description="Set when the program knows of a risk of "
            "self-harm: the answer then holds crisis resources only, no "
            "intervention ranking. A flagged request needs no other field (a "
            "person_id is enough); fields sent but not accepted are listed in "
            "the answer's 'ignored' instead of refusing it.",
        ),
    ),
    offered=(
        Annotated[list[str] | None, BeforeValidator(_offered_not_too_long)],
        Field(
            None,
            min_length=1,
            max_length=_MAX_OFFERED,
            description="Arm ids the program can offer this person "
            "(default: every arm of the catalog). Usual care is always "
            "the baseline.",
            examples=[["coaching", "peer_group"]],
        ),
    ),
)


class ServedProfileRequest(ProfileRequest):
    """One person's profile and what the program can offer. A model trained with extra features
    (columns a program added to the data contract) also takes each of them, by name: a number,
    or one of the values the model was trained on. A request missing one is answered 422 with
    the field and what it accepts; so is a field the served model does not know.
    """

    # Which extra fields are known depends on the model loaded at run time; the front door
    # (recommender.service._gate) checks them against it before this model is parsed.
    model_config = ConfigDict(extra="allow")

    # A body flagged crisis_risk, kept as sent when it is not a valid profile: a crisis answer
    # needs nothing but the flag, so a missing or invalid field must not refuse it.
    _crisis_body: dict | None = PrivateAttr(None)

    @model_validator(mode="wrap")
    @classmethod
    def _crisis_needs_no_profile(cls, data, handler):
        try:
            return handler(data)
        except ValidationError:
            from recommender.service._crisis import crisis_flagged

            if not crisis_flagged(data):
                raise
        request = cls.model_construct(crisis_risk=True)
        request._crisis_body = dict(data)
        return request

    def body(self) -> dict:
        """The request as a plain mapping: as sent for a crisis flag that is no valid profile."""
        return dict(self._crisis_body) if self._crisis_body is not None else self.model_dump()


# One entry of a batch or plan: documented as a profile object, but any JSON value is taken
# here so that an entry that is not an object gets its own error (checked against the served
# model with the others) instead of refusing the batch, its crisis rows included.
ProfileEntry = Annotated[Any, WithJsonSchema({"type": "object", "additionalProperties": True})]


class BatchRequest(BaseModel):
    """Many profiles at once; each entry has the fields of a ``/recommend`` body."""

    model_config = _STRICT

    profiles: list[ProfileEntry] = Field(
        min_length=1,
        max_length=MAX_BATCH_ROWS,
        description="Up to 10,000 profiles, each with the fields of a /recommend request body. "
        "Invalid entries get their own error entry; valid ones are answered.",
    )


class OutcomesRequest(BaseModel):
    """Follow-up scores of people the service has served (checked row by row on arrival)."""

    model_config = _STRICT

    outcomes: list[dict] = Field(
        min_length=1,
        max_length=MAX_BATCH_ROWS,
        description=(
            "Each: person_id (as sent with the recommendation), measured_at (ISO 8601), arm_taken "
            "(the arm the person actually took), ee_followup (0-54), dp_followup (0-30), "
            "pa_followup (0-48)."
        ),
    )
    correct: StrictBool = Field(
        False,
        description=(
            "true: each row corrects the outcome already recorded for the recommendation it "
            "links to (a mistyped score, say). The correction is stored as a record of its own "
            "and used from then on; the outcome it replaces is kept, marked with when and by "
            "whom it was replaced (GET /audit/export?table=outcomes). A row whose "
            "recommendation has no outcome yet is refused (422); one identical to the outcome "
            "in force is a duplicate (409). Without it, a different outcome for a "
            "recommendation that has one is refused (409)."
        ),
    )


class ErasureRequest(BaseModel):
    """People to erase from the audit store (a program's data-protection request)."""

    model_config = _STRICT

    person_ids: list[Annotated[StrictStr, Field(max_length=STORED_ID_MAX_LENGTH)]] = Field(
        min_length=1,
        max_length=MAX_BATCH_ROWS,
        description="Up to 10,000 person_ids, each as the program sent it to the service. "
        "Their assignments and outcomes are deleted and their answers redacted (kept, counted, "
        "naming no one). An id the store does not hold is reported by its position, never "
        f"echoed. Accepted: {accepted_text('person_ids')}.",
    )
    dry_run: StrictBool = Field(
        False, description="true: count what would be erased and change nothing."
    )


class ReloadRequest(BaseModel):
    """``/reload`` takes no fields; an empty body or ``{}``."""

    model_config = _STRICT


PROFILE_FIELDS: tuple[str, ...] = tuple(ProfileRequest.model_fields)


@functools.cache
def profile_list_adapter() -> TypeAdapter:
    """Validates a whole list of profiles in one call (built once, when first needed)."""
    return TypeAdapter(list[ProfileRequest])
