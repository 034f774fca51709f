"""Fairness of a plan: for each role, gender and setting, who is eligible, who is given what, and
the expected benefit per person, so a wellness lead can see whether a group is left out.

Cells smaller than ``min_cell`` people are suppressed (as in the model card's subgroups): their
size, shares and benefit are withheld, only the fact of suppression is shown; the next smallest
groups of the attribute are hidden with them until the hidden groups hold ``min_cell`` people
together, so the total less the shown groups cannot give them away.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from recommender.errors import InputError

__all__ = ["FAIRNESS_ATTRIBUTES", "MIN_CELL", "fairness_table", "fairness_records", "check_floors"]

FAIRNESS_ATTRIBUTES = ("role", "gender", "setting")
MIN_CELL = 11  # the card's default smallest reported cell


def check_floors(floors: Mapping[str, float] | None, roles=None) -> dict[str, float]:
    """``floors`` (role -> minimum share of the role's people given an arm) checked and as floats.

    Raises InputError naming ``floors.<role>`` for an unknown role or a share outside [0, 1].
    """
    if not floors:
        return {}
    if not isinstance(floors, Mapping):
        raise InputError(f"floors: expected a mapping of role -> minimum share, got {floors!r}")
    if roles is None:
        from recommender.cohort import CATEGORIES

        roles = CATEGORIES["role"]
    known = tuple(roles)
    problems, out = [], {}
    for role, share in floors.items():
        if role not in known:
            problems.append(
                {
                    "field": f"floors.{role}",
                    "value": share,
                    "accepted": f"a role: {', '.join(known)}",
                    "message": f"floors.{role}: unknown role; accepted: {', '.join(known)}",
                }
            )
            continue
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            problems.append(
                {
                    "field": f"floors.{role}",
                    "value": share,
                    "accepted": "a number from 0 to 1",
                    "message": f"floors.{role}: {share!r} is not a share; accepted: a number "
                    "from 0 to 1",
                }
            )
            continue
        out[str(role)] = float(share)
    if problems:
        raise InputError("; ".join(p["message"] for p in problems), problems=problems)
    return out


def fairness_table(
    assignment: pd.Series,
    eligible: pd.DataFrame,
    benefit: pd.DataFrame,
    profiles: pd.DataFrame,
    *,
    control: str = "none",
    min_cell: int = MIN_CELL,
) -> pd.DataFrame:
    """One row per (attribute, group, arm): shares eligible and allocated, and benefit per person.

    Parameters
    ----------
    assignment : Series
        The arm given to each person (``control`` for none).
    eligible : DataFrame of bool
        People x arms: may the arm be offered to the person.
    benefit : DataFrame
        People x arms: expected EE points avoided (``-effect``).
    profiles : DataFrame
        The people's ``role``, ``gender`` and ``setting`` (same index); a missing column is
        skipped.
    min_cell : int
        Groups with fewer people are suppressed.

    Returns
    -------
    DataFrame
        Columns ``attribute, group, people, arm, share_eligible, share_allocated,
        benefit_per_person, suppressed``. ``arm == "any"`` is the share given any arm and the
        group's expected EE points avoided per person (over everyone in the group, 0 for usual
        care). Shares and benefit are NaN where ``suppressed``.
    """
    arms = list(benefit.columns)
    given = assignment.astype(str).to_numpy()
    gained = np.zeros(len(given))
    for arm in arms:
        mask = given == arm
        gained[mask] = benefit[arm].to_numpy(float)[mask]
    rows = []
    for attribute in FAIRNESS_ATTRIBUTES:
        if attribute not in profiles.columns:
            continue
        values = profiles[attribute].astype(str).to_numpy()
        groups = sorted(set(values))
        sizes = {group: int((values == group).sum()) for group in groups}
        hidden_groups = _hidden_groups(sizes, min_cell)
        for group in groups:
            members = values == group
            people = sizes[group]
            hidden = group in hidden_groups
            for arm in [*arms, "any"]:
                if arm == "any":
                    eligible_share = eligible.to_numpy(bool)[members].any(axis=1).mean()
                    allocated = (given[members] != control).mean()
                    per_person = gained[members].mean()
                else:
                    eligible_share = eligible[arm].to_numpy(bool)[members].mean()
                    allocated = (given[members] == arm).mean()
                    per_person = np.nan
                rows.append(
                    {
                        "attribute": attribute,
                        "group": group,
                        "people": np.nan if hidden else people,
                        "arm": arm,
                        "share_eligible": np.nan if hidden else float(eligible_share),
                        "share_allocated": np.nan if hidden else float(allocated),
                        "benefit_per_person": np.nan if hidden else float(per_person),
                        "suppressed": hidden,
                    }
                )
    return pd.DataFrame(rows)


def _hidden_groups(sizes: dict[str, int], min_cell: int) -> set[str]:
    """The groups of one attribute to suppress: those under ``min_cell`` people, then the
    next smallest until the hidden groups together hold ``min_cell`` people. The total less
    the shown groups gives their sum away, and with it their figures (means over people):
    one small group hidden alone, or two of 5 and 4 people, would be read as a group of 9.
    The model card's subgroup tables hide the same groups (see
    :func:`recommender.evaluation.subgroup_table`)."""
    hidden = {g for g, size in sizes.items() if size < min_cell}
    while hidden and sum(sizes[g] for g in hidden) < min_cell and len(hidden) < len(sizes):
        hidden.add(min((size, g) for g, size in sizes.items() if g not in hidden)[1])
    return hidden


def fairness_records(table: pd.DataFrame) -> list[dict]:
    """The fairness table as JSON-ready records (NaN as None, head counts as whole numbers)."""
    records = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in table.to_dict(orient="records")
    ]
    for record in records:  # the column is float only because suppressed groups hold NaN
        if record.get("people") is not None:
            record["people"] = int(record["people"])
    return records
