"""Which arms may be ranked for one person: offered by the program, allowed by the catalog.

The catalog decides eligibility (for example coaching only for physicians); the program says
what it can offer this time; the model can only rank arms it has learned. Usual care is always
the baseline, so it is never "excluded".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from recommender.errors import InputError

__all__ = ["Exclusion", "offered_arms"]


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
                    problems=[{"field": f"{field}[{i}]", "value": arm,
                               "accepted": f"one of {', '.join(known)}"}],
                )
        asked = set(offered)
        wanted = [arm for arm in catalog.treatment_arms if arm in asked]
    eligible = set(catalog.eligible_arms(profile))
    modelled = None if modelled is None else set(modelled)
    arms, exclusions = [], []
    for arm in wanted:
        if arm not in eligible:
            why = _eligibility_text(catalog, arm, profile)
            exclusions.append(Exclusion(arm, "not eligible for this profile under catalog "
                                             f"{catalog.version}: {why}"))
        elif modelled is not None and arm not in modelled:
            exclusions.append(Exclusion(arm, "the served model has no estimate for this arm"))
        else:
            arms.append(arm)
    return arms, exclusions


def _eligibility_text(catalog, arm: str, profile: Mapping) -> str:
    rule = catalog.arm(arm).eligibility
    reasons = rule.reasons_against(profile) if hasattr(rule, "reasons_against") else []
    return "; ".join(reasons) or "see the catalog's eligibility rule"
