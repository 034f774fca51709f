"""Cohort allocation: who gets which arm when places and money are limited.

Each person's expected benefit from an arm is the number of Emotional Exhaustion points it is
expected to avoid versus usual care (``-effect``). The allocation maximises the cohort's total
expected benefit subject to

- at most one arm per person, and only arms the person is eligible for;
- an arm's capacity (places per program cycle);
- the budget (cost per person of each arm);
- group sizes: an arm delivered in groups of ``group_min``..``group_max`` is given to a number
  of people that can be split into whole groups (e.g. 6-10 per group: 11 people cannot be);
- optional floors: at least a given share of each named role's people is given an arm;

as a mixed-integer program (:mod:`~recommender.policy._program`) solved exactly by HiGHS
(``scipy.optimize.milp``) with only the arms' counts and groups as whole-number variables
(:mod:`~recommender.policy._solver` says why that is exact). No one is given an arm that is not
expected to help them (benefit <= 0), and with ``confident_only`` no one is given an arm whose
interval does not exclude "no benefit". Callers plan a cohort through
:func:`~recommender.policy.plan_allocation`, which decides who may be given what and calls this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.errors import InputError, PlanTimeout
from recommender.policy._fairness import MIN_CELL, check_floors, fairness_records, fairness_table
from recommender.policy._limits import ArmLimits
from recommender.policy._reach import unreachable_arms
from recommender.policy._program import build_program, candidate_pairs, checked_inputs, floor_rows
from recommender.policy._solver import MIP_GAP, solve

__all__ = ["Allocation", "allocate"]


@dataclass(frozen=True)
class Allocation:
    """The result of :func:`allocate`.

    Attributes
    ----------
    assignment : Series
        The arm given to each person (index of the effects frame); the control arm for those
        who get none.
    summary : DataFrame
        Per arm: people, groups, cost, expected EE points avoided, capacity.
    total_cost : float
    budget : float or None
    expected_points_avoided : float
        Sum over the cohort of the assigned arms' expected benefit (EE points).
    status : str
        ``"optimal"``, or how far from the best possible the plan may be (``gap``, in words),
        and why the solver stopped (time limit) when it stopped early.
    gap : float
        The plan's proven relative gap to ``bound`` (0 when proven optimal).
    fairness : DataFrame or None
        Per role, gender and setting: shares eligible and allocated per arm and the expected
        benefit per person (:func:`~recommender.policy._fairness.fairness_table`); None when
        no profiles were given.
    floors : dict
        The minimum share per role the plan was held to (empty: none).
    bound : float or None
        EE points avoided that no plan within the constraints can exceed, as the solver proved
        it (equal to ``expected_points_avoided`` for an optimal plan, up to ``MIP_GAP``).
    min_cell : int
        Groups of ``fairness`` with fewer people are suppressed.
    notes : tuple of str
        Why an arm that some people may be given is given to nobody whatever the plan: fewer
        of them than its smallest group, or a budget below what one place or its smallest
        group costs (once for the whole plan when the budget pays for no arm at all).
    """

    assignment: pd.Series
    summary: pd.DataFrame
    total_cost: float
    budget: float | None
    expected_points_avoided: float
    status: str
    gap: float
    fairness: pd.DataFrame | None = None
    floors: Mapping[str, float] | None = None
    bound: float | None = None
    min_cell: int = MIN_CELL
    notes: tuple = ()

    def to_dict(self) -> dict:
        out = {
            "status": self.status,
            "gap": self.gap,
            "bound": self.bound,
            "budget": self.budget,
            "total_cost": self.total_cost,
            "expected_points_avoided": self.expected_points_avoided,
            "arms": self.summary.reset_index().to_dict(orient="records"),
            "floors": dict(self.floors or {}),
            "min_cell": self.min_cell,
            "notes": list(self.notes),
        }
        if self.fairness is not None:
            out["fairness"] = fairness_records(self.fairness)
        return out


def allocate(
    effects: pd.DataFrame,
    limits: Mapping[str, ArmLimits],
    *,
    budget: float | None = None,
    eligible: pd.DataFrame | None = None,
    upper: pd.DataFrame | None = None,
    confident_only: bool = False,
    control: str = "none",
    time_limit: float = 60.0,
    profiles: pd.DataFrame | None = None,
    floors: Mapping[str, float] | None = None,
    min_cell: int = MIN_CELL,
) -> Allocation:
    """Assign at most one arm per person to maximise the cohort's expected benefit.

    Parameters
    ----------
    effects : DataFrame
        People x non-control arms: expected change in EE under the arm versus usual care
        (negative is better), as the model's ``effect_<arm>``.
    limits : mapping of arm to ArmLimits
        Cost, capacity and group sizes for every column of ``effects``.
    budget : float, optional
        Total money available; None for no budget constraint.
    eligible : DataFrame of bool, optional
        Same shape as ``effects``; False where the arm may not be offered to the person.
    upper : DataFrame, optional
        Upper bounds of the effects' intervals; needed with ``confident_only``.
    confident_only : bool, default False
        Give an arm only when its interval excludes no benefit (upper bound < 0).
    control : str, default "none"
        Name reported for people who get no arm.
    time_limit : float, default 60
        Seconds the solver may take; if it stops early the best allocation found is returned
        with its status and gap.
    profiles : DataFrame, optional
        The people's ``role``, ``gender`` and ``setting`` (same index as ``effects``): the plan
        then reports its fairness by group, and ``floors`` can name roles.
    floors : mapping of role to share, optional
        At least this share of each named role's people (in the cohort) is given an arm, a
        constraint of the same program (needs ``profiles``).
    min_cell : int, default 11
        Fairness cells smaller than this are suppressed. A plan made with a model takes the
        model's own (:func:`recommender.model.model_min_cell`: its card's ``min_cell``), so
        that the plan hides every cell its card hides.

    Returns
    -------
    Allocation

    Raises
    ------
    InputError
        Bad effects, limits, budget or floors (each named), or constraints no allocation
        satisfies (floors that cannot all be met say which role and why).
    PlanTimeout
        The solver reached ``time_limit`` before finding any allocation, or any better than
        usual care for everyone when a better one exists (not the input's fault: retry with
        more time or fewer people).

    Examples
    --------
    >>> effects = pd.DataFrame({"coaching": [-6.0, -1.0, -4.0], "mindfulness": [-2.0, -3.0, -1.0]},
    ...                        index=["p1", "p2", "p3"])
    >>> limits = {"coaching": ArmLimits(1400, capacity=1), "mindfulness": ArmLimits(100)}
    >>> allocate(effects, limits, budget=1600).assignment.tolist()
    ['coaching', 'mindfulness', 'mindfulness']
    """
    benefit, allowed, arms = checked_inputs(
        effects, limits, budget, eligible, upper, confident_only
    )
    n, k = benefit.shape
    floor_constraints = floor_rows(floors, profiles, effects.index, allowed)
    # a floor counts who (which role) gets an arm: the exchange keeps to people of one role
    strata = profiles["role"].astype(str).to_numpy() if floor_constraints else None
    candidates = candidate_pairs(benefit, allowed, arms, limits, budget, strata=strata)
    program = build_program(benefit, allowed & candidates, arms, limits, budget, floor_constraints)
    people, arm_of, m = program.people, program.arm_of, program.m
    cost = np.array([float(limits[a].cost_per_person) for a in arms])
    result = solve(program, float(time_limit))
    if result.x is None:
        if result.status == 1:  # time (or iteration) limit before any plan was found
            raise PlanTimeout(
                f"the solver ran out of time ({float(time_limit):g} s) before it "
                f"found any plan ({result.message})"
            )
        if floor_constraints:
            wanted = ", ".join(f"{role} {share:g}" for role, share in check_floors(floors).items())
            raise InputError(
                f"floors: the minimum shares per role ({wanted}) cannot all be met within the "
                f"budget ({budget if budget is not None else 'none'}), the arms' places and group "
                f"sizes; lower a floor, or raise the budget or capacity ({result.message})",
                problems=[
                    {
                        "field": f"floors.{role}",
                        "value": share,
                        "accepted": "a lower share, or a larger budget or capacity: with "
                        f"these, no plan meets every floor ({wanted})",
                        "message": "cannot all be met within budget and capacity",
                    }
                    for role, share in check_floors(floors).items()
                ],
            )
        raise InputError(f"no allocation satisfies the constraints ({result.message})")
    chosen = result.x[:m] > 0.5
    if result.status == 1 and not chosen.any() and (getattr(result, "bound", 0.0) or 0.0) > 0:
        # Stopped with only HiGHS's trivial plan, usual care for everyone, while a better one
        # exists: that is no plan, and recorded as one it would read as a decision to give
        # nobody anything.
        raise PlanTimeout(
            f"the solver ran out of time ({float(time_limit):g} s) before it found any plan "
            f"better than usual care for everyone ({result.message})"
        )
    people_of = [int(np.sum(chosen & (arm_of == j))) for j in range(k)]
    assigned = np.full(n, control, dtype=object)
    assigned[people[chosen]] = np.asarray(arms, dtype=object)[arm_of[chosen]]
    assignment = pd.Series(assigned, index=effects.index, name="allocated")

    summary = pd.DataFrame(
        {
            "people": people_of,
            "groups": [
                program.groups_of(result.x, j) if j in program.grouped else people_of[j]
                for j in range(k)
            ],
            "capacity": [limits[a].capacity for a in arms],
            "cost": [float(cost[j] * np.sum(chosen & (arm_of == j))) for j in range(k)],
            "expected_points_avoided": [
                float(benefit[people[chosen & (arm_of == j)], j].sum()) for j in range(k)
            ],
        },
        index=pd.Index(arms, name="arm"),
    )
    gap = float(getattr(result, "mip_gap", 0.0) or 0.0)
    # Every reader of a plan (the CLI's summary, /allocate's answer) shows this one status: a
    # plan that is not proven optimal says how far from the best it may be.
    within = f"within {gap:.3%} of the best possible (the bound the solver proved)"
    status = (
        "optimal"
        if result.status == 0 and gap <= MIP_GAP
        else within
        if result.status == 0
        else f"stopped early ({result.message}); the best plan found is {within}"
    )
    fairness = None
    if profiles is not None:
        elig = (
            eligible
            if eligible is not None
            else pd.DataFrame(True, index=effects.index, columns=arms)
        )
        fairness = fairness_table(
            assignment,
            elig.set_axis(arms, axis=1),
            pd.DataFrame(benefit, index=effects.index, columns=arms),
            profiles,
            control=control,
            min_cell=min_cell,
        )
    return Allocation(
        assignment=assignment,
        summary=summary,
        total_cost=float(summary["cost"].sum()),
        budget=None if budget is None else float(budget),
        expected_points_avoided=float(summary["expected_points_avoided"].sum()),
        status=status,
        gap=gap,
        fairness=fairness,
        floors=check_floors(floors),
        bound=getattr(result, "bound", None),
        min_cell=int(min_cell),
        notes=unreachable_arms(allowed, arms, limits, budget, confident_only=confident_only),
    )
