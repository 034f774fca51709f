"""Which arms may be ranked for one person: offered by the program, allowed by the catalog.

The catalog decides eligibility (for example coaching only for physicians); the program says
what it can offer this time; the model can only rank arms it has learned. Usual care is always
the baseline, so it is never "excluded".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.errors import InputError

__all__ = ["Exclusion", "offered_arms", "eligible_mask", "eligibility_matrix"]


@dataclass(frozen=True)
class Exclusion:
    """An arm the program offered that is not ranked for this person, and why."""

    arm: str
    reason: str


def offered_arms(
    catalog,
    profile: Mapping,
    *,
    offered: Sequence[str] | None = None,
    modelled: Iterable[str] | None = None,
    field: str = "offered",
    eligible: Iterable[str] | None = None,
    unmodelled: Mapping[str, str] | None = None,
) -> tuple[list[str], list[Exclusion]]:
    """The treatment arms to rank for one profile, in catalog order, and the ones left out.

    Parameters
    ----------
    catalog : recommender.catalog.Catalog
        Provides ``version``, ``control``, ``arm_ids``, ``treatment_arms`` and
        ``eligible_arms(profile)``.
    profile : mapping
        One validated profile.
    offered : sequence of str, optional
        Arm ids the program can offer; ``None`` means every treatment arm of the catalog.
        The control arm may be listed and is ignored (usual care is always the baseline).
    modelled : iterable of str, optional
        Arms the served model has effects for; other arms are excluded with a reason.
    field : str
        Name of the request field, used in error messages.
    eligible : iterable of str, optional
        The arms the catalog allows this person, when already found for many people at once
        (:func:`eligible_mask`); default: found here.
    unmodelled : mapping of str to str, optional
        Why the served model has no effect for an arm, per arm not in ``modelled`` (default: it
        has no estimate).

    Returns
    -------
    arms : list of str
        Treatment arms to rank (may be empty: then only usual care remains).
    exclusions : list of Exclusion

    Raises
    ------
    InputError
        When ``offered`` names an arm the catalog does not have.
    """
    known = tuple(catalog.arm_ids)
    if offered is None:
        wanted = list(catalog.treatment_arms)
    else:
        for i, arm in enumerate(offered):
            if arm not in known:
                raise InputError(
                    f"{field}[{i}]: {arm!r} is not an arm of intervention catalog "
                    f"{catalog.version}; accepted: {', '.join(known)}",
                    problems=[
                        {
                            "field": f"{field}[{i}]",
                            "value": arm,
                            "accepted": f"one of {', '.join(known)}",
                        }
                    ],
                )
        asked = set(offered)
        wanted = [arm for arm in catalog.treatment_arms if arm in asked]
    if eligible is None:
        mask = eligible_mask(catalog, [profile], wanted)[0]
        eligible = {arm for arm, ok in zip(wanted, mask) if ok}
    eligible = set(eligible)
    modelled = None if modelled is None else set(modelled)
    arms, exclusions = [], []
    unmodelled = unmodelled or {}
    for arm in wanted:
        if modelled is not None and arm not in modelled:
            # Said first, for everyone: no person is ranked this arm whatever the rules say.
            why = unmodelled.get(arm, "the served model has no estimate for this arm")
            exclusions.append(Exclusion(arm, why))
        elif arm not in eligible:
            why = _eligibility_text(catalog, arm, profile)
            exclusions.append(
                Exclusion(
                    arm, f"not eligible for this profile under catalog {catalog.version}: {why}"
                )
            )
        else:
            arms.append(arm)
    return arms, exclusions


def eligible_mask(catalog, profiles, arms=None) -> np.ndarray:
    """The one eligibility rule: may the program offer each arm to each person?

    Parameters
    ----------
    catalog : Catalog
        Each arm's eligibility rule (roles, specialties, years in practice).
    profiles : DataFrame or sequence of mappings
        People with ``role`` and, where a rule needs them, ``specialty`` and
        ``years_in_practice``.
    arms : sequence of str, optional
        Default: every treatment arm of the catalog.

    Returns
    -------
    ndarray of bool (people x arms)
    """
    arms = list(catalog.treatment_arms if arms is None else arms)
    frame = isinstance(profiles, pd.DataFrame)
    n = len(profiles)

    def column(name, kind):
        if frame:
            values = profiles[name]
            return (
                values.astype(float).to_numpy()
                if kind is float
                else values.astype(str).to_numpy(dtype=object)
            )
        return np.array([kind(p[name]) for p in profiles], dtype=float if kind is float else object)

    def member(values, allowed):
        allowed = set(allowed)
        return np.fromiter((v in allowed for v in values), dtype=bool, count=n)

    cache: dict = {}
    out = np.ones((n, len(arms)), dtype=bool)
    for k, arm in enumerate(arms):
        rule = catalog.arm(arm).eligibility
        if "role" not in cache:
            cache["role"] = column("role", str)
        out[:, k] &= member(cache["role"], rule.roles)
        if rule.specialties is not None:
            if "specialty" not in cache:
                cache["specialty"] = column("specialty", str)
            out[:, k] &= member(cache["specialty"], rule.specialties)
        if rule.min_years_in_practice is not None or rule.max_years_in_practice is not None:
            if "years" not in cache:
                cache["years"] = column("years_in_practice", float)
            years = cache["years"]
            if rule.min_years_in_practice is not None:
                out[:, k] &= years >= rule.min_years_in_practice
            if rule.max_years_in_practice is not None:
                out[:, k] &= years <= rule.max_years_in_practice
    return out


def eligibility_matrix(catalog, profiles: pd.DataFrame, arms=None) -> pd.DataFrame:
    """:func:`eligible_mask` as a boolean frame (people x arms) on the profiles' index."""
    arms = list(catalog.treatment_arms if arms is None else arms)
    return pd.DataFrame(eligible_mask(catalog, profiles, arms), index=profiles.index, columns=arms)


def _eligibility_text(catalog, arm: str, profile: Mapping) -> str:
    rule = catalog.arm(arm).eligibility
    reasons = rule.reasons_against(profile) if hasattr(rule, "reasons_against") else []
    return "; ".join(reasons) or "see the catalog's eligibility rule"
