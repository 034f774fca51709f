"""What each arm costs and how many people it can take this cycle: the catalog's, or overrides.

Overrides come from people (a CLI option, an HTTP body), so every one is checked here and a bad
one is refused by name (``capacity.<arm>``, ``cost.<arm>``) rather than reaching the solver.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, replace

from recommender.errors import InputError

__all__ = [
    "BUDGET_ACCEPTED",
    "MAX_CAPACITY",
    "MAX_COST_PER_PERSON",
    "ArmLimits",
    "limits_from_catalog",
]

# Places one arm may have in a cycle: far beyond any program, and a bound the solver can use.
# The one limit of the CLI's --capacity, the service's capacity and every library caller's.
MAX_CAPACITY = 1_000_000
# US$ per person an arm may cost: far beyond any program, and within what the solver takes (HiGHS
# refuses a budget coefficient of 1e15 or more as a model error, which read as "no allocation").
MAX_COST_PER_PERSON = 1e9
# What a plan's budget may be, in every refusal of one (the service's, the CLI's, the library's).
BUDGET_ACCEPTED = "a number >= 0 (US$), or none for no budget limit"


@dataclass(frozen=True)
class ArmLimits:
    """What one arm costs and how many people it can take.

    Attributes
    ----------
    cost_per_person : float
        US$ per participant (0 or more).
    capacity : int or None
        Places available; None for no limit.
    group_min, group_max : int
        Group size limits; 1 and 1 for one-to-one formats.
    """

    cost_per_person: float = 0.0
    capacity: int | None = None
    group_min: int = 1
    group_max: int = 1


def limits_from_catalog(
    catalog,
    arms=None,
    *,
    capacity: Mapping[str, float] | None = None,
    cost: Mapping[str, float] | None = None,
) -> dict[str, ArmLimits]:
    """Each (non-control) arm's cost, capacity and group sizes: the catalog's, or this cycle's.

    Parameters
    ----------
    catalog : Catalog
    arms : sequence of str, optional
        The arms to plan with (default: every treatment arm of the catalog).
    capacity, cost : mapping of arm to number, optional
        This cycle's places and US$ per person, overriding the catalog's (an override of an
        arm of the catalog outside ``arms`` is checked, then has nothing to apply to).

    Raises
    ------
    InputError
        Naming every bad override (``capacity.<arm>``, ``cost.<arm>``): an arm the catalog does
        not offer, a capacity that is not a whole number from 0 to ``MAX_CAPACITY`` or cannot
        hold one group (0 closes the arm), a cost that is not a finite number >= 0 within
        ``MAX_COST_PER_PERSON``.
    """
    arms = catalog.treatment_arms if arms is None else arms
    limits = {
        arm: ArmLimits(
            cost_per_person=float(catalog.arm(arm).cost_per_person),
            capacity=catalog.arm(arm).capacity,
            group_min=int(catalog.arm(arm).group_min),
            group_max=int(catalog.arm(arm).group_max),
        )
        for arm in arms
    }
    problems = []

    def refuse(field, value, accepted, message):
        problems.append({"field": field, "value": value, "accepted": accepted, "message": message})

    for kind, overrides in (("capacity", capacity or {}), ("cost", cost or {})):
        for arm, value in overrides.items():
            field = f"{kind}.{arm}"
            shown = _shown(value)
            if arm not in catalog.treatment_arms:
                refuse(
                    field,
                    shown,
                    f"an intervention of catalog {catalog.version}: "
                    + ", ".join(catalog.treatment_arms),
                    "unknown intervention",
                )
            elif kind == "capacity" and (
                (places := _whole(value)) is None or places > MAX_CAPACITY
            ):
                refuse(
                    field,
                    shown,
                    f"a whole number of places >= 0 and at most {MAX_CAPACITY:,} (0: not "
                    "offered this cycle)",
                    "not a whole number >= 0 within the largest capacity",
                )
            elif kind == "capacity" and 0 < places < catalog.arm(arm).group_min:
                # No group can be formed: almost surely a mistake, not a way to close the arm.
                refuse(
                    field,
                    shown,
                    f"0 (not offered) or at least {catalog.arm(arm).group_min}"
                    f", the smallest group {arm} runs with",
                    "too few places for one group",
                )
            elif kind == "cost" and (
                (price := _money(value)) is None or price > MAX_COST_PER_PERSON
            ):
                refuse(
                    field,
                    shown,
                    f"a number of US$ per person >= 0 and at most {MAX_COST_PER_PERSON:,.0f}",
                    "not a number >= 0 within the largest cost",
                )
            elif arm in limits:
                change = {"capacity": places} if kind == "capacity" else {"cost_per_person": price}
                limits[arm] = replace(limits[arm], **change)
    if problems:
        first = problems[0]
        raise InputError(
            f"{first['field']}: {first['value']!r} is not accepted; accepted: {first['accepted']}",
            problems=problems,
        )
    return limits


def _whole(value) -> int | None:
    """``value`` as a whole number >= 0, or None when it is not one (never raises).

    Any size of integer is a whole number (a capacity of 10**30 is then refused as beyond
    ``MAX_CAPACITY``, by name, never overflowing); so is a float with no fraction. A bool, a string or anything else is not a number here.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral):
        places = int(value)
    else:
        try:
            number = float(value)
        except (OverflowError, ValueError, TypeError):
            return None
        if not math.isfinite(number) or not number.is_integer():
            return None
        places = int(number)
    return places if places >= 0 else None


def _money(value) -> float | None:
    """``value`` as a finite float >= 0, or None when it is not one (never raises)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except (OverflowError, ValueError, TypeError):  # e.g. an int beyond any float
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _shown(value):
    # A refused value as the problem shows it: a huge int or text cut short (repr of an int
    # of more than 4,300 digits would itself raise).
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if abs(int(value)) >= 10**15:
            digits = len(str(int(value))) if abs(int(value)) < 10**4000 else "4,000+"
            return f"an integer of {digits} digits"
        return value
    if isinstance(value, str) and len(value) > 120:
        return value[:120] + "..."
    return value
