"""Cohort tables for the cohort, catalog and validate-command tests (no tests here).

Built in code with a fixed seed so every test starts from a table known to be clean and then
plants exactly the fault it is about.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.cohort import CATEGORIES

ARMS = ("none", "coaching", "mindfulness", "peer_group", "resilience_training", "balint_group")


def clean_cohort(n: int = 240, *, seed: int = 0, training: bool = True, arms=ARMS) -> pd.DataFrame:
    """A contract-clean cohort; with ``training`` every arm gets ``n / len(arms)`` rows."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "person_id": [f"p{i:04d}" for i in range(n)],
            "age": rng.integers(25, 70, n),
            "gender": rng.choice(CATEGORIES["gender"], n),
            "role": rng.choice(CATEGORIES["role"], n),
            "specialty": rng.choice(CATEGORIES["specialty"], n),
            "setting": rng.choice(CATEGORIES["setting"], n),
            "years_in_practice": rng.uniform(0, 35, n).round(1),
            "weekly_hours": rng.uniform(30, 80, n).round(1),
            "ee": rng.integers(0, 55, n),
            "dp": rng.integers(0, 31, n),
            "pa": rng.integers(0, 49, n),
        }
    )
    # The contract's rule across two fields: no one practises before 16 (years <= age - 16).
    frame["years_in_practice"] = np.minimum(frame["years_in_practice"], frame["age"] - 16)
    if training:
        frame["intervention"] = np.resize(np.array(arms), n)
        frame["ee_followup"] = rng.integers(0, 55, n)
        frame["dp_followup"] = rng.integers(0, 31, n)
        frame["pa_followup"] = rng.integers(0, 49, n)
        frame["propensity"] = 1 / len(arms)
        for arm in arms[1:]:
            frame[f"true_effect_{arm}"] = rng.normal(-2, 1, n)
    return frame


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The table as CSV reading gives it: every cell a string, missing cells missing."""
    return frame.astype(object).where(frame.notna(), None).astype("string").astype(object)


def plant_ten_faults(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Ten different faults in one table, as text; returns it and the (column, rule) pairs."""
    text = frame.astype(object).copy()
    text.loc[3, "age"] = "abc"  # 1 wrong type
    text.loc[4, "ee"] = 3.5  # 2 not a whole number
    text.loc[5, "dp"] = 31  # 3 out of range
    text.loc[6, "gender"] = "Female"  # 4 unknown category
    text.loc[7, "person_id"] = text.loc[2, "person_id"]  # 5 duplicate id
    text.loc[8, "setting"] = None  # 6 missing value
    text.loc[9, "person_id"] = "x" * 65  # 7 id too long
    text.loc[10, "intervention"] = "yoga"  # 8 unknown arm
    text.loc[11, "propensity"] = 0  # 9 propensity outside (0, 1]
    text = text.drop(columns=["weekly_hours"])  # 10 missing required column
    faults = [
        ("age", "type"),
        ("ee", "not_integer"),
        ("dp", "range"),
        ("gender", "category"),
        ("person_id", "duplicate_id"),
        ("setting", "missing_value"),
        ("person_id", "id_length"),
        ("intervention", "unknown_arm"),
        ("propensity", "propensity_range"),
        ("weekly_hours", "missing_column"),
    ]
    return text, faults
