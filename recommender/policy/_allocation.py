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

as a mixed-integer program solved exactly by HiGHS (``scipy.optimize.milp``). No one is given an
arm that is not expected to help them (benefit <= 0), and with ``confident_only`` no one is
given an arm whose interval does not exclude "no benefit".
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from recommender.errors import InputError, PlanTimeout
from recommender.policy._eligibility import eligibility_matrix
from recommender.policy._fairness import MIN_CELL, check_floors, fairness_table

__all__ = ["ArmLimits", "Allocation", "allocate", "limits_from_catalog", "eligibility_matrix"]


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
        ``"optimal"``, or why the solver stopped (time limit) with the remaining ``gap``.
    gap : float
        Relative optimality gap reported by the solver (0 when proven optimal).
    fairness : DataFrame or None
        Per role, gender and setting: shares eligible and allocated per arm and the expected
        benefit per person (:func:`~recommender.policy._fairness.fairness_table`); None when
        no profiles were given.
    floors : dict
        The minimum share per role the plan was held to (empty: none).
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

    def to_dict(self) -> dict:
        out = {
            "status": self.status,
            "gap": self.gap,
            "budget": self.budget,
            "total_cost": self.total_cost,
            "expected_points_avoided": self.expected_points_avoided,
            "arms": self.summary.reset_index().to_dict(orient="records"),
            "floors": dict(self.floors or {}),
        }
        if self.fairness is not None:
            out["fairness"] = fairness_records(self.fairness)
        return out


def fairness_records(table: pd.DataFrame) -> list[dict]:
    """The fairness table as JSON-ready records (NaN as None)."""
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in table.to_dict(orient="records")
    ]


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
        not offer, a capacity that is not a whole number >= 0 or cannot hold one group (0
        closes the arm), a cost that is not a finite number >= 0.
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
            elif kind == "capacity" and (places := _whole(value)) is None:
                refuse(
                    field,
                    shown,
                    "a whole number of places >= 0 (0: not offered this cycle)",
                    "not a whole number >= 0",
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
            elif kind == "cost" and (price := _money(value)) is None:
                refuse(field, shown, "a number of US$ per person >= 0", "not a number >= 0")
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

    Any size of integer is a whole number (a capacity of 10**30 is "no limit in practice"); so
    is a float with no fraction. A bool, a string or anything else is not a number here.
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
        Fairness cells smaller than this are suppressed.

    Returns
    -------
    Allocation

    Raises
    ------
    InputError
        Bad effects, limits, budget or floors (each named), or constraints no allocation
        satisfies (floors that cannot all be met say which role and why).
    PlanTimeout
        The solver reached ``time_limit`` before finding any allocation (not the input's
        fault: giving everyone usual care always fits; retry with more time or fewer people).

    Examples
    --------
    >>> effects = pd.DataFrame({"coaching": [-6.0, -1.0, -4.0], "mindfulness": [-2.0, -3.0, -1.0]},
    ...                        index=["p1", "p2", "p3"])
    >>> limits = {"coaching": ArmLimits(1400, capacity=1), "mindfulness": ArmLimits(100)}
    >>> allocate(effects, limits, budget=1600).assignment.tolist()
    ['coaching', 'mindfulness', 'mindfulness']
    """
    benefit, allowed, arms = _check(effects, limits, budget, eligible, upper, confident_only)
    n, k = benefit.shape
    floor_rows = _floor_rows(floors, profiles, effects.index, allowed)
    # a floor counts who (which role) gets an arm: the exchange keeps to people of one role
    strata = profiles["role"].astype(str).to_numpy() if floor_rows else None
    candidates = _candidates(benefit, allowed, arms, limits, budget, strata=strata)
    program = _program(benefit, allowed & candidates, arms, limits, budget, floor_rows)
    people, arm_of, m, grouped = program.people, program.arm_of, program.m, program.grouped
    cost = np.array([float(limits[a].cost_per_person) for a in arms])
    result = _solve(program, float(time_limit))
    if result.x is None:
        if result.status == 1:  # time (or iteration) limit before any plan was found
            raise PlanTimeout(
                f"the solver ran out of time ({float(time_limit):g} s) before it "
                f"found any plan ({result.message})"
            )
        if floor_rows:
            wanted = ", ".join(f"{role} {share:g}" for role, share in check_floors(floors).items())
            raise InputError(
                f"floors: the minimum shares per role ({wanted}) cannot all be met within the "
                f"budget ({budget if budget is not None else 'none'}), the arms' places and group "
                f"sizes; lower a floor, or raise the budget or capacity ({result.message})",
                problems=[f"floors: {wanted} cannot all be met within budget and capacity"],
            )
        raise InputError(f"no allocation satisfies the constraints ({result.message})")
    chosen = result.x[:m] > 0.5
    assigned = np.full(n, control, dtype=object)
    assigned[people[chosen]] = np.asarray(arms, dtype=object)[arm_of[chosen]]
    assignment = pd.Series(assigned, index=effects.index, name="allocated")

    summary = pd.DataFrame(
        {
            "people": [int(np.sum(chosen & (arm_of == j))) for j in range(k)],
            "groups": [
                int(round(result.x[m + grouped.index(j)]))
                if j in grouped
                else int(np.sum(chosen & (arm_of == j)))
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
    status = (
        "optimal"
        if result.status == 0 and gap <= MIP_GAP
        else f"within {gap:.3%} of the best possible (bound of the LP relaxation)"
        if result.status == 0
        else f"stopped early: {result.message}"
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
    )


def _floor_rows(floors, profiles, index, allowed) -> list[tuple[np.ndarray, int]]:
    """(members of the role, people that must be given an arm) per floor, checked up front."""
    if not floors:
        return []
    if profiles is None or "role" not in profiles.columns or not profiles.index.equals(index):
        raise InputError(
            "floors: need the people's roles (profiles with a 'role' column, same rows as effects)"
        )
    roles = profiles["role"].astype(str).to_numpy()
    checked = check_floors(floors)
    out, problems = [], []
    for role, share in checked.items():
        members = roles == role
        need = math.ceil(share * int(members.sum()) - 1e-9)
        reachable = int(allowed[members].any(axis=1).sum())
        if need > reachable:
            problems.append(
                f"floors.{role}: {share:g} of {int(members.sum())} means {need} people, but only "
                f"{reachable} of them are eligible for an arm expected to help them"
            )
        out.append((members.astype(float), need))
    if problems:
        raise InputError("; ".join(problems), problems=problems)
    return out


# Relative gap at which a plan counts as optimal (HiGHS's own tolerance, as before).
MIP_GAP = 1e-6
# A plan found by fixing the LP relaxation's integral part is accepted when it is proven
# within this share of the LP bound; otherwise the full MILP is solved.
ACCEPTED_GAP = 1e-3
# Below this many (person, arm) pairs the full MILP is quick: it is solved directly.
DIRECT_PAIRS = 5_000


@dataclass
class _Program:
    """The allocation MILP: one binary per allowed (person, arm) pair, then group counts."""

    objective: np.ndarray
    constraints: list
    lower: np.ndarray  # variable bounds
    upper: np.ndarray
    people: np.ndarray  # person of each pair variable
    arm_of: np.ndarray  # arm of each pair variable
    m: int  # pair variables (the rest are group counts)
    grouped: list  # arm positions with a group-count variable, in variable order


def _program(benefit, allowed, arms, limits, budget, floor_rows=()) -> _Program:
    """Every variable and constraint of the allocation, built in one place.

    Each person at most one arm; each arm's capacity; group-size windows tied to an integer
    number of groups; each role's floor (``floor_rows``); the budget. Every way of solving (direct, or LP then fixing) solves
    this same program, so a constraint added here holds for all of them.
    """
    from scipy.optimize import LinearConstraint
    from scipy.sparse import coo_matrix, vstack

    n, k = benefit.shape
    people, arm_of = np.nonzero(allowed)  # one binary variable per allowed (person, arm) pair
    m = people.size
    grouped = [
        j for j, arm in enumerate(arms) if limits[arm].group_min > 1 or limits[arm].group_max > 1
    ]
    n_vars = m + len(grouped)  # the x pairs, then one integer "number of groups" per grouped arm
    objective = np.zeros(n_vars)
    objective[:m] = -benefit[people, arm_of]
    cost = np.array([float(limits[a].cost_per_person) for a in arms])

    rows, lower, upper_b = [], [], []
    # each person at most one arm
    rows.append(coo_matrix((np.ones(m), (people, np.arange(m))), shape=(n, n_vars)))
    lower.append(np.zeros(n))
    upper_b.append(np.ones(n))
    # per-arm counts: capacity, and group-size windows tied to the number of groups
    count = coo_matrix((np.ones(m), (arm_of, np.arange(m))), shape=(k, n_vars)).tocsr()
    # No arm can take more than the cohort: capping there keeps any capacity (10**400) a float.
    capacity = np.array(
        [np.inf if limits[a].capacity is None else float(min(limits[a].capacity, n)) for a in arms]
    )
    rows.append(count)
    lower.append(np.zeros(k))
    upper_b.append(capacity)
    for g, j in enumerate(grouped):
        lim = limits[arms[j]]
        groups = coo_matrix(([1.0], ([0], [m + g])), shape=(1, n_vars)).tocsr()
        rows.append(count[j] - lim.group_min * groups)  # count >= group_min * groups
        lower.append(np.zeros(1))
        upper_b.append(np.array([np.inf]))
        rows.append(count[j] - lim.group_max * groups)  # count <= group_max * groups
        lower.append(np.array([-np.inf]))
        upper_b.append(np.zeros(1))
    for members, need in floor_rows:  # a role's people given any arm >= its floor
        take = np.zeros(n_vars)
        take[:m] = members[people]
        rows.append(coo_matrix(take[None, :]))
        lower.append(np.array([float(need)]))
        upper_b.append(np.array([np.inf]))
    if budget is not None:
        spend = np.zeros(n_vars)
        spend[:m] = cost[arm_of]
        rows.append(coo_matrix(spend[None, :]))
        lower.append(np.array([-np.inf]))
        upper_b.append(np.array([float(budget)]))

    matrix = vstack(rows).tocsr()
    constraint = LinearConstraint(matrix, np.concatenate(lower), np.concatenate(upper_b))
    var_upper = np.ones(n_vars)
    for g, j in enumerate(grouped):
        var_upper[m + g] = np.floor(min(capacity[j], n) / limits[arms[j]].group_min)
    return _Program(
        objective, [constraint], np.zeros(n_vars), var_upper, people, arm_of, m, grouped
    )


def _candidates(benefit, allowed, arms, limits, budget, strata=None) -> np.ndarray:
    """The (person, arm) pairs an optimal plan can be found among: exact, not a heuristic.

    At most ``K`` people get any arm: no more than the arms' capacities together, and no more
    than the budget buys at the cheapest arm. Suppose a plan gives arm ``a`` to someone outside
    the ``K`` people who benefit most from ``a``: at most ``K - 1`` others are given anything,
    so one of those ``K`` gets nothing, and giving ``a`` to that person instead changes no
    count, cost or group and loses no benefit. So some optimal plan gives each arm only to its
    ``K`` best-benefiting eligible people. With the demo's budget of $50,000 that leaves about
    2,500 of 74,000 pairs. A constraint that depends on who gets an arm (not only how many),
    such as a floor per role, keeps the argument within each of its classes: pass them as
    ``strata`` (one label per person) and the ``K`` best are kept per class.
    """
    n, k = benefit.shape
    places = []
    for arm in arms:
        lim = limits[arm]
        most = n if lim.capacity is None else min(int(lim.capacity), n)
        if budget is not None and lim.cost_per_person > 0:
            most = min(most, int(math.floor(float(budget) / float(lim.cost_per_person))))
        places.append(most)
    total = min(sum(places), n)
    if budget is not None:
        costs = [float(limits[a].cost_per_person) for a in arms]
        cheapest = min(costs) if costs else 0.0
        if cheapest > 0:
            total = min(total, int(math.floor(float(budget) / cheapest)))
    keep = np.zeros_like(allowed, dtype=bool)
    classes = (
        [np.arange(n)]
        if strata is None
        else [np.flatnonzero(strata == label) for label in np.unique(strata)]
    )
    for members in classes:
        if total >= len(members):
            keep[members] = True
            continue
        for j in range(k):
            rows = members[allowed[members, j]]
            if len(rows) > total:
                rows = rows[np.argsort(-benefit[rows, j], kind="stable")[:total]]
            keep[rows, j] = True
    return keep


def _milp(program: _Program, lower, upper, time_limit: float, *, relax: bool = False):
    from scipy.optimize import Bounds, milp

    return milp(
        program.objective,
        constraints=program.constraints,
        integrality=np.zeros_like(lower) if relax else np.ones_like(lower),
        bounds=Bounds(lower, upper),
        options={"time_limit": max(float(time_limit), 0.01), "mip_rel_gap": MIP_GAP, "disp": False},
    )


def _solve(program: _Program, time_limit: float):
    """Solve the program: directly when small, else from its LP relaxation.

    With many people the LP relaxation is almost integral: a basic solution has only about
    as many fractional values as there are constraints beyond "one arm per person" (arms'
    capacities and groups, the budget). Every person whose LP values are already whole is
    fixed to them, except, per arm, the least-benefiting people given it and the most-
    benefiting people eligible but not given it (so group counts can move both ways); the
    MILP then decides only the rest. Its plan is compared with the LP bound: accepted when
    within ``ACCEPTED_GAP``, and otherwise more people are freed, up to the full MILP.
    The returned result carries ``mip_gap``, the proven gap to the LP bound.
    """
    import time

    start = time.monotonic()
    if program.m <= DIRECT_PAIRS:
        return _milp(program, program.lower, program.upper, time_limit)
    relaxed = _milp(program, program.lower, program.upper, time_limit, relax=True)
    if relaxed.x is None:  # infeasible or out of time: the full MILP says which, properly
        return _milp(program, program.lower, program.upper, time_limit - (time.monotonic() - start))
    bound = -relaxed.fun
    x, m = relaxed.x, program.m
    pairs = x[:m]
    whole = np.abs(pairs - np.round(pairs)) <= 1e-9
    fractional_people = np.unique(program.people[~whole])
    benefit = -program.objective[:m]
    released_per_arm = 32
    while True:
        free = np.zeros(int(program.people.max()) + 1 if m else 0, dtype=bool)
        free[fractional_people] = True
        for j in np.unique(program.arm_of):
            mine = np.flatnonzero(program.arm_of == j)
            given = mine[pairs[mine] > 0.5]
            others = mine[pairs[mine] <= 0.5]
            free[program.people[given[np.argsort(benefit[given])[:released_per_arm]]]] = True
            free[program.people[others[np.argsort(-benefit[others])[:released_per_arm]]]] = True
        fixed = ~free[program.people]
        lower, upper = program.lower.copy(), program.upper.copy()
        lower[:m][fixed] = upper[:m][fixed] = np.round(pairs[fixed])
        remaining = time_limit - (time.monotonic() - start)
        result = _milp(program, lower, upper, remaining)
        if result.x is not None:
            value = -result.fun
            gap = max(bound - value, 0.0) / max(abs(bound), 1e-12)
            if gap <= ACCEPTED_GAP or free.all():
                result.mip_gap = max(gap, float(getattr(result, "mip_gap", 0.0) or 0.0))
                return result
        if free.all() or time.monotonic() - start >= time_limit:
            return _milp(
                program, program.lower, program.upper, time_limit - (time.monotonic() - start)
            )
        released_per_arm *= 8


def _check(effects, limits, budget, eligible, upper, confident_only):
    if not isinstance(effects, pd.DataFrame) or effects.empty:
        raise InputError("effects: expected a non-empty DataFrame of people x arms")
    arms = [str(a) for a in effects.columns]
    missing = [a for a in arms if a not in limits]
    if missing:
        raise InputError(
            f"limits: no cost/capacity given for arm(s) {missing}; give one ArmLimits per arm"
        )
    problems = []
    for arm in arms:
        lim = limits[arm]
        if _money(lim.cost_per_person) is None:
            problems.append(
                f"{arm}.cost_per_person={lim.cost_per_person!r} (accepted: a number >= 0)"
            )
        if lim.capacity is not None and _whole(lim.capacity) is None:
            problems.append(
                f"{arm}.capacity={lim.capacity!r} (accepted: a whole number >= 0, or None)"
            )
        if not (1 <= lim.group_min <= lim.group_max):
            problems.append(
                f"{arm}.group_min/group_max={lim.group_min}/{lim.group_max} (accepted: 1 <= min <= max)"
            )
    if budget is not None and _money(budget) is None:
        problems.append(f"budget={budget!r} (accepted: a number >= 0, or None)")
    values = effects.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        r, c = np.argwhere(~np.isfinite(values))[0]
        problems.append(
            f"effects: row {effects.index[r]!r} arm {arms[c]!r} is {values[r, c]} (accepted: finite numbers)"
        )
    if confident_only and upper is None:
        problems.append("confident_only=True needs the effects' upper interval bounds (upper=)")
    for name, frame in (("eligible", eligible), ("upper", upper)):
        if frame is not None and (
            list(map(str, frame.columns)) != arms or not frame.index.equals(effects.index)
        ):
            problems.append(f"{name}: must have the same rows and arm columns as effects")
    if problems:
        raise InputError("cannot allocate: " + "; ".join(problems), problems=problems)

    benefit = -values
    allowed = benefit > 0
    if eligible is not None:
        allowed &= eligible.to_numpy(dtype=bool)
    if confident_only:
        allowed &= upper.to_numpy(dtype=float) < 0
    return benefit, allowed, arms
