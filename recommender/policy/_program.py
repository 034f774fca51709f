"""The allocation as a mixed-integer program: its inputs checked, its variables and constraints.

Variables, in this order:

- one per allowed (person, arm) pair: the share of the arm the person is given (0 or 1 in a
  plan; the solver may treat it as continuous, see :mod:`recommender.policy._solver`);
- one whole number per arm: how many people are given it;
- one whole number per arm delivered in groups: how many groups it runs.

Constraints: each person at most one arm; each arm's count is the sum of its pairs; a count
within the arm's capacity and within ``group_min`` .. ``group_max`` times its groups; the
budget over the counts; each role's floor over its people's pairs. Every way of solving reads
this one program, so a constraint added here holds for all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.errors import InputError
from recommender.policy._fairness import check_floors
from recommender.policy._limits import BUDGET_ACCEPTED, MAX_COST_PER_PERSON, _money, _whole

__all__ = ["Program", "build_program", "candidate_pairs", "checked_inputs", "floor_rows"]


@dataclass
class Program:
    """The allocation program in ``scipy.optimize.milp``'s terms, and how to read a solution."""

    objective: np.ndarray  # to minimise: minus each pair's benefit, 0 for counts and groups
    constraints: list
    lower: np.ndarray  # variable bounds
    upper: np.ndarray
    people: np.ndarray  # person of each pair variable
    arm_of: np.ndarray  # arm of each pair variable
    m: int  # pair variables; then ``k`` counts, then one group count per arm in ``grouped``
    k: int
    grouped: list  # arm positions with a group-count variable, in variable order
    cost: np.ndarray | None = None  # per person, by arm (the budget row's terms)
    budget: float | None = None

    def integrality(self, *, pairs: bool) -> np.ndarray:
        """1 for whole-number variables: counts and groups always, the pairs when ``pairs``."""
        out = np.ones_like(self.lower)
        if not pairs:
            out[: self.m] = 0
        return out

    def groups_of(self, x: np.ndarray, j: int) -> int:
        """Groups arm ``j`` runs in solution ``x`` (its people, for one-to-one arms)."""
        if j in self.grouped:
            return int(round(x[self.m + self.k + self.grouped.index(j)]))
        return int(round(x[self.m + j]))


def checked_inputs(effects, limits, budget, eligible, upper, confident_only):
    """``(benefit, allowed, arms)`` from the caller's frames, or an InputError naming each problem.

    ``benefit`` is EE points avoided (``-effect``); ``allowed`` marks the pairs a plan may use:
    eligible, expected to help, and (with ``confident_only``) an interval excluding no benefit.
    """
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
        price = _money(lim.cost_per_person)
        if price is None or price > MAX_COST_PER_PERSON:
            problems.append(
                f"{arm}.cost_per_person={lim.cost_per_person!r} (accepted: a number >= 0 and at "
                f"most {MAX_COST_PER_PERSON:,.0f})"
            )
        if lim.capacity is not None and _whole(lim.capacity) is None:
            problems.append(
                f"{arm}.capacity={lim.capacity!r} (accepted: a whole number >= 0, or none for no limit)"
            )
        if not (1 <= lim.group_min <= lim.group_max):
            problems.append(
                f"{arm}.group_min/group_max={lim.group_min}/{lim.group_max} (accepted: 1 <= min <= max)"
            )
    if budget is not None and _money(budget) is None:
        problems.append(f"budget={budget!r} (accepted: {BUDGET_ACCEPTED})")
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


def floor_rows(floors, profiles, index, allowed) -> list[tuple[np.ndarray, int]]:
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
            total = int(members.sum())
            problems.append(
                {
                    "field": f"floors.{role}",
                    "value": share,
                    "accepted": f"a share that needs at most {reachable} of these {total} "
                    f"people (at most {reachable / total:.3g})",
                    "message": f"floors.{role}: {share:g} of {total} means {need} people, but "
                    f"only {reachable} of them are eligible for an arm expected to help them",
                }
            )
        out.append((members.astype(float), need))
    if problems:
        raise InputError("; ".join(p["message"] for p in problems), problems=problems)
    return out


def build_program(benefit, allowed, arms, limits, budget, floors=()) -> Program:
    """Every variable and constraint of the allocation (see the module's docstring).

    The budget is written over the arms' counts, which equal their pairs' sums: the same
    constraint in fewer terms.
    """
    from scipy.optimize import LinearConstraint
    from scipy.sparse import coo_matrix, csr_matrix, vstack

    n, k = benefit.shape
    people, arm_of = np.nonzero(allowed)  # one variable per allowed (person, arm) pair
    m = people.size
    grouped = [
        j for j, arm in enumerate(arms) if limits[arm].group_min > 1 or limits[arm].group_max > 1
    ]
    n_vars = m + k + len(grouped)
    objective = np.zeros(n_vars)
    objective[:m] = -benefit[people, arm_of]
    cost = np.array([float(limits[a].cost_per_person) for a in arms])
    # No arm can take more than the people allowed it: capping there keeps any capacity
    # (10**400) a float and gives the solver tight bounds.
    reach = allowed.sum(axis=0)
    places = np.array(
        [
            float(reach[j] if limits[a].capacity is None else min(limits[a].capacity, reach[j]))
            for j, a in enumerate(arms)
        ]
    )

    rows, lower, upper = [], [], []
    # each person at most one arm (people with no allowed pair need no row)
    someone, row_of = np.unique(people, return_inverse=True)
    rows.append(coo_matrix((np.ones(m), (row_of, np.arange(m))), shape=(someone.size, n_vars)))
    lower.append(np.zeros(someone.size))
    upper.append(np.ones(someone.size))
    # each arm's count is the sum of its pairs
    rows.append(
        coo_matrix(
            (
                np.concatenate([np.ones(m), -np.ones(k)]),
                (
                    np.concatenate([arm_of, np.arange(k)]),
                    np.concatenate([np.arange(m), m + np.arange(k)]),
                ),
            ),
            shape=(k, n_vars),
        )
    )
    lower.append(np.zeros(k))
    upper.append(np.zeros(k))
    # group-size windows: group_min * groups <= count <= group_max * groups
    for g, j in enumerate(grouped):
        lim = limits[arms[j]]
        for size, low, high in ((lim.group_min, 0.0, np.inf), (lim.group_max, -np.inf, 0.0)):
            window = np.zeros(n_vars)
            window[m + j], window[m + k + g] = 1.0, -float(size)
            rows.append(csr_matrix(window[None, :]))
            lower.append(np.array([low]))
            upper.append(np.array([high]))
    for members, need in floors:  # a role's people given any arm >= its floor
        take = np.zeros(n_vars)
        take[:m] = members[people]
        rows.append(csr_matrix(take[None, :]))
        lower.append(np.array([float(need)]))
        upper.append(np.array([np.inf]))
    if budget is not None:
        spend = np.zeros(n_vars)
        spend[m : m + k] = cost
        rows.append(csr_matrix(spend[None, :]))
        lower.append(np.array([-np.inf]))
        upper.append(np.array([float(budget)]))

    matrix = vstack(rows).tocsr()
    constraint = LinearConstraint(matrix, np.concatenate(lower), np.concatenate(upper))
    var_upper = np.ones(n_vars)
    var_upper[m : m + k] = places
    for g, j in enumerate(grouped):
        var_upper[m + k + g] = np.floor(places[j] / limits[arms[j]].group_min)
    return Program(
        objective,
        [constraint],
        np.zeros(n_vars),
        var_upper,
        people,
        arm_of,
        m,
        k,
        grouped,
        cost,
        None if budget is None else float(budget),
    )


def candidate_pairs(benefit, allowed, arms, limits, budget, strata=None) -> np.ndarray:
    """The (person, arm) pairs an optimal plan can be found among: exact, not a heuristic.

    At most ``K`` people get any arm: no more than the arms' capacities together, and no more
    than the budget buys at the cheapest arm. Suppose a plan gives arm ``a`` to someone outside
    the ``K`` people who benefit most from ``a``: at most ``K - 1`` others are given anything,
    so one of those ``K`` gets nothing, and giving ``a`` to that person instead changes no
    count, cost or group and loses no benefit. So some optimal plan gives each arm only to its
    ``K`` best-benefiting eligible people. With the demo's budget of $50,000 that leaves about
    1,500 of 75,000 pairs. A constraint that depends on who gets an arm (not only how many),
    such as a floor per role, keeps the argument within each of its classes: pass them as
    ``strata`` (one label per person) and the ``K`` best are kept per class.
    """
    n, k = benefit.shape
    places = []
    for arm in arms:
        lim = limits[arm]
        most = n if lim.capacity is None else min(int(lim.capacity), n)
        if budget is not None and lim.cost_per_person > 0:
            most = min(most, _places_paid(budget, lim.cost_per_person))
        places.append(most)
    total = min(sum(places), n)
    if budget is not None:
        costs = [float(limits[a].cost_per_person) for a in arms]
        cheapest = min(costs) if costs else 0.0
        if cheapest > 0:
            total = min(total, _places_paid(budget, cheapest))
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


def _places_paid(budget, cost) -> int:
    """Places ``budget`` pays for at ``cost`` each, never one too few: 2.34 / 0.78 is
    2.9999999999999996 in floating point, where the solver (within its tolerance) buys 3. One
    place too many only keeps a candidate more; one too few could cut an optimal plan's."""
    return int(math.floor(float(budget) / float(cost) + 1e-9))
