"""The cohort data contract as data: columns, types, allowed values and ranges.

Mirrors ``shared/design/data-contract.md``. Validation, typing and the feature frame all read
these tables, so a change to the contract is a change here and nowhere else.
"""

from __future__ import annotations

import re

__all__ = [
    "PROFILE_COLUMNS",
    "FEATURE_COLUMNS",
    "CATEGORIES",
    "ROLE_NAMES",
    "RANGES",
    "INTEGER_COLUMNS",
    "FLOAT_COLUMNS",
    "SCORE_COLUMNS",
    "OUTCOME_COLUMNS",
    "TRAINING_COLUMNS",
    "TREATMENT_COLUMN",
    "PROPENSITY_COLUMN",
    "ORACLE_PREFIX",
    "CRISIS_COLUMN",
    "is_crisis_name",
    "PERSON_ID_MAX_LENGTH",
    "MBI_ITEMS_REFUSED",
    "looks_like_mbi_item",
    "PRACTICE_START_AGE",
    "PRACTICE_ACCEPTED",
    "practice_begins_too_early",
    "practice_problem",
]

PROFILE_COLUMNS: tuple[str, ...] = (
    "person_id",
    "age",
    "gender",
    "role",
    "specialty",
    "setting",
    "years_in_practice",
    "weekly_hours",
    "ee",
    "dp",
    "pa",
)

# What the learners see, in this order; person_id identifies, it never predicts.
FEATURE_COLUMNS: tuple[str, ...] = PROFILE_COLUMNS[1:]

CATEGORIES: dict[str, tuple[str, ...]] = {
    "gender": ("female", "male", "nonbinary", "undisclosed"),
    "role": ("physician", "resident", "nurse", "app"),
    "specialty": (
        "primary_care",
        "internal_medicine",
        "surgery",
        "emergency_medicine",
        "pediatrics",
        "psychiatry",
        "oncology",
        "critical_care",
        "other",
    ),
    "setting": ("academic", "community", "rural"),
}

# Each role in words (plural), as answers and cards name the people of a role.
ROLE_NAMES: dict[str, str] = {
    "physician": "physicians",
    "resident": "residents",
    "nurse": "nurses",
    "app": "advanced practice providers (APPs: nurse practitioners, physician assistants)",
}

SCORE_COLUMNS: tuple[str, ...] = ("ee", "dp", "pa")
OUTCOME_COLUMNS: tuple[str, ...] = ("ee_followup", "dp_followup", "pa_followup")
TREATMENT_COLUMN = "intervention"
PROPENSITY_COLUMN = "propensity"
TRAINING_COLUMNS: tuple[str, ...] = (TREATMENT_COLUMN, *OUTCOME_COLUMNS)
ORACLE_PREFIX = "true_effect_"
# Optional in files for score and allocate: a flagged row gets crisis resources only (never a
# ranking or an arm), read by recommender.policy.crisis_flags; never a feature.
CRISIS_COLUMN = "crisis_risk"
_NOT_ALPHANUMERIC = re.compile(r"[\W_]+")


def is_crisis_name(name) -> bool:
    """Is ``name`` ``crisis_risk`` but for case, spaces, hyphens or underscores (``"Crisis
    Risk"``, ``"crisisRisk"``, ``"crisis_risk "``)? A request's key or a file's column so
    named is meant as the crisis flag: read as such, never ignored as an unknown field.

    Examples
    --------
    >>> [is_crisis_name(n) for n in ("Crisis Risk", " crisis_risk", "not_crisis_risk", 3)]
    [True, True, False, False]
    """
    return isinstance(name, str) and _NOT_ALPHANUMERIC.sub("", name).casefold() == "crisisrisk"


PERSON_ID_MAX_LENGTH = 64

# Inclusive bounds. MBI-HSS subscale maxima: 9, 5 and 8 items scored 0-6.
RANGES: dict[str, tuple[float, float]] = {
    "age": (18, 90),
    "years_in_practice": (0, 60),
    "weekly_hours": (0, 120),
    "ee": (0, 54),
    "dp": (0, 30),
    "pa": (0, 48),
    "ee_followup": (0, 54),
    "dp_followup": (0, 30),
    "pa_followup": (0, 48),
}

# A rule across two fields, beside their RANGES: no one practises before 16, so a profile's
# years_in_practice is at most age - 16 ("30 years old, 40 years in practice" is a typing
# slip, which a model would otherwise rank as if it were a person). The simulator's
# age_at_entry minima (at least 17, whole ages rounding by up to half a year) keep every
# simulated person inside it.
PRACTICE_START_AGE = 16
PRACTICE_ACCEPTED = (
    f"years_in_practice at most age - {PRACTICE_START_AGE} (practice begins at "
    f"{PRACTICE_START_AGE} at the earliest)"
)


def practice_begins_too_early(age, years):
    """Whether ``years`` in practice at ``age`` began before :data:`PRACTICE_START_AGE`;
    numbers or arrays alike.

    >>> practice_begins_too_early(30, 40.0), practice_begins_too_early(30, 14.0)
    (True, False)
    """
    return years > age - PRACTICE_START_AGE


def practice_problem(age, years) -> str:
    """The refusal's words, naming both fields and their values.

    >>> practice_problem(30, 40.0)
    'years_in_practice 40 with age 30: practice would have begun at age -10; at most 14 at age 30'
    """
    age, years = float(age), float(years)
    return (
        f"years_in_practice {years:g} with age {age:g}: practice would have begun at age "
        f"{round(age - years, 6):g}; at most {max(age - PRACTICE_START_AGE, 0):g} at age {age:g}"
    )


INTEGER_COLUMNS: tuple[str, ...] = ("age", "ee", "dp", "pa", *OUTCOME_COLUMNS)
FLOAT_COLUMNS: tuple[str, ...] = ("years_in_practice", "weekly_hours")

# The MBI is copyrighted: the project takes its subscale scores (ee, dp, pa: sums of their items)
# and never asks for, learns from or stores an item's answer or wording. A column or field named
# like an item's answer (ee_item_1, dp3, mbi_q12, items) is refused where one could come in.
_MBI_ITEM = re.compile(
    r"mbi([\W_\d].*)?"  # mbi_ee_3, MBI-HSS-Q22, mbi1
    r"|items?|(items?|questions?|q)[_\-\s]?\d{1,2}"  # items, item_4, q12
    r"|(ee|dp|pa)(_followup)?[_\-\s]?((items?|questions?|q)[_\-\s]?)?\d{1,2}",  # ee_item_1, dp3
    re.IGNORECASE,
)
MBI_ITEMS_REFUSED = (
    "the subscale scores ee, dp and pa (each the sum of its items' answers) alone: the MBI is "
    "copyrighted, and its items' answers and wording are neither asked for nor stored"
)


def looks_like_mbi_item(name: str) -> bool:
    """Whether a column or field name reads as one MBI item's answer (or a list of them).

    >>> [looks_like_mbi_item(n) for n in ("ee_item_3", "dp2", "mbi_q12", "ee", "unit")]
    [True, True, True, False, False]
    """
    return _MBI_ITEM.fullmatch(str(name).strip()) is not None
