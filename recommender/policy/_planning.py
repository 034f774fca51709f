"""Cohort planning: from every person's estimated effects to who is given which arm.

The one planning function that the service's ``/allocate``, ``recommender allocate`` and
:func:`pipelines.allocate.plan_cohort` all call. It decides which arms each person may be given
(the catalog's eligibility, what the program offers this cycle and to this person, an estimate
to go on), this cycle's limits, the allocation under budget, capacity, group sizes and floors
(:func:`~recommender.policy.allocate`), and for each person the arm they are given with its
figures and the arm they would be given without limits. Safety triage and crisis flags stay
with the callers, before this: a crisis-flagged person never reaches the model or the plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from recommender.errors import InputError
from recommender.policy._allocation import Allocation, allocate
from recommender.policy._eligibility import eligible_mask
from recommender.policy._fairness import FAIRNESS_ATTRIBUTES, MIN_CELL, check_floors
from recommender.policy._limits import (
    BUDGET_ACCEPTED,
    ArmLimits,
    _money,
    _shown,
    limits_from_catalog,
)
from recommender.policy._ranking import best_arm

__all__ = ["PlannedCohort", "check_plan_options", "plan_allocation"]


@dataclass(frozen=True)
class PlannedCohort:
    """A cohort's plan, person by person (rows in the order given), and the allocation.

    Attributes
    ----------
    arms : tuple of str
        The arms planned with, in catalog order: offered, and estimated by the model.
    limits : dict of arm to ArmLimits
        This cycle's cost, places and group sizes of each planned arm.
    allocation : Allocation
        Totals per arm, status, proven gap, fairness and floors.
    allowed : ndarray of bool (people x arms)
        May the arm be given to the person: eligible, offered to them, with a finite estimate.
    allocated : ndarray of str
        The arm each person is given (the control arm: usual care).
    recommended : ndarray of str
        The allowed arm with the best expected effect if nothing were limited (the control
        arm when none is expected to help).
    figures : ndarray (people x 3)
        Expected EE change, lower and upper bound under the allocated arm (0 for usual care).
    """

    arms: tuple
    limits: dict
    allocation: Allocation
    allowed: np.ndarray
    allocated: np.ndarray
    recommended: np.ndarray
    figures: np.ndarray


def check_plan_options(
    catalog,
    arms: Sequence[str] | None = None,
    *,
    capacity: Mapping[str, float] | None = None,
    cost: Mapping[str, float] | None = None,
    floors: Mapping[str, float] | None = None,
    budget: float | None = None,
) -> dict[str, ArmLimits]:
    """A plan's options checked before anything is scored or planned; this cycle's limits.

    What :func:`plan_allocation` checks first, for callers that want a bad option refused
    before they score a cohort (``recommender allocate`` before it loads the model, the
    service's ``/allocate`` before it checks and scores the profiles).

    Parameters
    ----------
    catalog : Catalog
    arms : sequence of str, optional
        The arms planned with (default: every treatment arm of the catalog).
    capacity, cost : mapping of arm to number, optional
        As for :func:`~recommender.policy.limits_from_catalog`.
    floors : mapping of role to share, optional
        As for :func:`~recommender.policy.allocate`.
    budget : float, optional
        US$ for the whole plan; None for no budget limit.

    Returns
    -------
    dict of arm to ArmLimits

    Raises
    ------
    InputError
        Naming every bad option (``capacity.<arm>``, ``cost.<arm>``, ``floors.<role>``,
        ``budget``): its value and what is accepted.
    """
    problems, limits = [], {}
    try:
        limits = limits_from_catalog(catalog, arms, capacity=capacity, cost=cost)
    except InputError as error:
        problems += error.problems
    try:
        check_floors(floors)
    except InputError as error:  # (floors that are not a mapping come without problems)
        problems += error.problems or [{"field": "floors", "value": None, "accepted": str(error)}]
    if budget is not None and _money(budget) is None:
        problems.append(
            {
                "field": "budget",
                "value": _shown(budget),
                "accepted": BUDGET_ACCEPTED,
                "message": "not a number >= 0",
            }
        )
    if problems:
        first = problems[0]
        raise InputError(
            f"{first['field']}: {first.get('value')!r} is not accepted; accepted: "
            f"{first.get('accepted', '')}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            problems=problems,
        )
    return limits


def plan_allocation(
    catalog,
    profiles,
    effect,
    lower,
    upper,
    *,
    arms: Sequence[str],
    offered: Sequence[str] | None = None,
    offered_to: Sequence[Sequence[str] | None] | None = None,
    budget: float | None = None,
    capacity: Mapping[str, float] | None = None,
    cost: Mapping[str, float] | None = None,
    confident_only: bool = False,
    floors: Mapping[str, float] | None = None,
    time_limit: float = 60.0,
    min_cell: int = MIN_CELL,
) -> PlannedCohort:
    """Plan a cohort: the largest expected benefit that fits the cycle's money and places.

    Parameters
    ----------
    catalog : Catalog
        Arms, eligibility, costs, capacities, group sizes and the control arm.
    profiles : DataFrame or sequence of mappings
        One validated profile per person (``role``, ``gender``, ``setting`` and what the
        eligibility rules read), in the order of the effect rows.
    effect, lower, upper : array-like (people x len(arms))
        Each arm's expected EE change against usual care with its interval.
    arms : sequence of str
        The arms of the effect columns (the model's treatment arms).
    offered : sequence of str, optional
        Arms the program offers this cycle (default: every catalog arm the model estimates).
    offered_to : sequence, optional
        Per person, the arms offered to them (None or empty: all of ``offered``).
    budget, capacity, cost, confident_only, floors, time_limit, min_cell
        As for :func:`~recommender.policy.allocate` and
        :func:`~recommender.policy.limits_from_catalog`.

    Raises
    ------
    InputError
        An arm offered that the catalog or the model does not have, a bad override, budget or
        floor (each named), or constraints no plan satisfies.
    PlanTimeout
        The solver ran out of time before any plan.
    """
    planned = _planned_arms(catalog, arms, offered)
    n = len(profiles)
    columns = [list(arms).index(arm) for arm in planned]
    effect, lower, upper = (
        np.asarray(table, dtype=float).reshape(n, len(arms))[:, columns]
        for table in (effect, lower, upper)
    )
    limits = check_plan_options(
        catalog, planned, capacity=capacity, cost=cost, floors=floors, budget=budget
    )
    rows = profiles if isinstance(profiles, pd.DataFrame) else list(profiles)
    # an arm without an estimate for someone is not given to them
    estimated = np.isfinite(effect) & np.isfinite(lower) & np.isfinite(upper)
    allowed = eligible_mask(catalog, rows, planned) & estimated
    if offered_to is not None:
        allowed &= np.array(
            [[not wanted or arm in wanted for arm in planned] for wanted in offered_to], dtype=bool
        ).reshape(n, len(planned))
    control = catalog.control
    if not planned or n == 0:
        return _usual_care_for_all(planned, limits, allowed, control, budget, floors, n, min_cell)
    frame = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows
    # People with the same expected benefit (an arm with one effect for everyone, say) tie for
    # its places; the solver breaks a tie by the people's order, so the plan is solved in
    # person_id order: the same cohort, its rows in any order, gets the same plan.
    order = _canonical_order(frame, n)
    index = pd.Index(order)
    allocation = allocate(
        pd.DataFrame(np.where(estimated, effect, 0.0)[order], index=index, columns=planned),
        limits,
        budget=budget,
        eligible=pd.DataFrame(allowed[order], index=index, columns=planned),
        upper=pd.DataFrame(np.where(estimated, upper, 0.0)[order], index=index, columns=planned),
        confident_only=confident_only,
        control=control,
        time_limit=time_limit,
        profiles=frame[list(FAIRNESS_ATTRIBUTES)].iloc[order].set_axis(index, axis=0),
        floors=floors or None,
        min_cell=min_cell,
    )
    allocation = replace(allocation, assignment=allocation.assignment.sort_index())
    allocated = allocation.assignment.to_numpy(dtype=object)
    figures = np.zeros((n, 3))
    for j, arm in enumerate(planned):
        given = allocated == arm
        figures[given] = np.stack([effect[given, j], lower[given, j], upper[given, j]], axis=1)
    recommended = best_arm(
        np.where(estimated, effect, 0.0), planned, control=control, allowed=allowed
    )
    return PlannedCohort(
        arms=tuple(planned),
        limits=limits,
        allocation=allocation,
        allowed=allowed,
        allocated=allocated,
        recommended=np.asarray(recommended, dtype=object),
        figures=figures,
    )


def _canonical_order(frame: pd.DataFrame, n: int) -> np.ndarray:
    """The rows' positions in person_id order (as text; ties keep the rows' order), or as
    they are when the profiles carry no person_id."""
    if "person_id" not in frame.columns:
        return np.arange(n)
    return np.argsort(frame["person_id"].astype(str).to_numpy(), kind="stable")


def _planned_arms(catalog, arms, offered) -> list[str]:
    """The catalog's treatment arms the model estimates and the program offers, in catalog order."""
    estimated = {str(a) for a in arms}
    if offered is None:
        return [a for a in catalog.treatment_arms if a in estimated]
    unknown = sorted({str(a) for a in offered} - set(catalog.treatment_arms))
    if unknown:
        raise InputError(
            f"offered: unknown arm(s) {unknown}; the catalog offers "
            f"{', '.join(catalog.treatment_arms)}",
            problems=[
                {
                    "field": "offered",
                    "value": a,
                    "accepted": f"an arm of catalog {catalog.version}: "
                    + ", ".join(catalog.treatment_arms),
                }
                for a in unknown
            ],
        )
    missing = [a for a in offered if a not in estimated]
    if missing:
        raise InputError(f"the model has no effects for {missing}; it knows {sorted(estimated)}")
    wanted = set(offered)
    return [a for a in catalog.treatment_arms if a in wanted]


def _usual_care_for_all(
    planned, limits, allowed, control, budget, floors, n, min_cell
) -> PlannedCohort:
    # Nobody to plan for, or nothing to plan with: everyone gets usual care.
    summary = pd.DataFrame(
        {
            "people": [0] * len(planned),
            "groups": [0] * len(planned),
            "capacity": [limits[a].capacity for a in planned],
            "cost": [0.0] * len(planned),
            "expected_points_avoided": [0.0] * len(planned),
        },
        index=pd.Index(planned, name="arm"),
    )
    allocation = Allocation(
        assignment=pd.Series([control] * n, index=pd.RangeIndex(n), name="allocated", dtype=object),
        summary=summary,
        total_cost=0.0,
        budget=None if budget is None else float(budget),
        expected_points_avoided=0.0,
        status="optimal",
        gap=0.0,
        fairness=None,
        floors=dict(floors or {}),
        bound=0.0,
        min_cell=int(min_cell),
    )
    return PlannedCohort(
        arms=tuple(planned),
        limits=limits,
        allocation=allocation,
        allowed=allowed,
        allocated=np.full(n, control, dtype=object),
        recommended=np.full(n, control, dtype=object),
        figures=np.zeros((n, 3)),
    )
