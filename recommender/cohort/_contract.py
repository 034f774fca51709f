"""The cohort data contract as data: columns, types, allowed values and ranges.

Mirrors ``shared/design/data-contract.md``. Validation, typing and the feature frame all read
these tables, so a change to the contract is a change here and nowhere else.
"""

from __future__ import annotations

__all__ = [
    "PROFILE_COLUMNS",
    "FEATURE_COLUMNS",
    "CATEGORIES",
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
    "PERSON_ID_MAX_LENGTH",
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

SCORE_COLUMNS: tuple[str, ...] = ("ee", "dp", "pa")
OUTCOME_COLUMNS: tuple[str, ...] = ("ee_followup", "dp_followup", "pa_followup")
TREATMENT_COLUMN = "intervention"
PROPENSITY_COLUMN = "propensity"
TRAINING_COLUMNS: tuple[str, ...] = (TREATMENT_COLUMN, *OUTCOME_COLUMNS)
ORACLE_PREFIX = "true_effect_"
# Optional in files for score and allocate: a flagged row gets crisis resources only (never a
# ranking or an arm), read by recommender.policy.crisis_flags; never a feature.
CRISIS_COLUMN = "crisis_risk"
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

INTEGER_COLUMNS: tuple[str, ...] = ("age", "ee", "dp", "pa", *OUTCOME_COLUMNS)
FLOAT_COLUMNS: tuple[str, ...] = ("years_in_practice", "weekly_hours")
