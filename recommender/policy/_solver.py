"""Solving the allocation program exactly, with a handful of whole-number variables.

The program (:mod:`recommender.policy._program`) has one variable per (person, arm) pair, a
count per arm and a group count per grouped arm. Only the counts and groups need to be whole
numbers: once they are, the pairs' constraints (each person at most one arm, each arm exactly
its count, each role at least its floor) form a totally unimodular system (the person and role
rows are one nested family, the arm rows another), so the pairs' polytope has whole vertices
and the best plan for those counts is a vertex. Hence the program with continuous pairs has the
optimum of the plain MILP, and HiGHS branches on about ten variables instead of thousands.

Its solution is a vertex and whole in practice; when the solver hands back pairs that are not
whole (a tolerance, a non-vertex optimum), the counts and groups are fixed and the pairs solved
as whole numbers, which the unimodular structure makes a root-node problem. The bound HiGHS
proves for the program is a bound on every plan, so the gap reported is proven; where two cheap
relaxations bound it tighter (a solve cut short by its time limit), theirs is reported.
"""

from __future__ import annotations

import time

import numpy as np

from recommender.policy._program import Program

__all__ = ["MIP_GAP", "solve", "plain_milp", "lp_bound"]

# Relative gap at which HiGHS stops and a plan counts as optimal.
MIP_GAP = 1e-6
# How far from a whole number a pair may lie and still be read as one (HiGHS's tolerance).
WHOLE = 1e-6


def _milp(program: Program, lower, upper, time_limit: float, *, pairs: bool, relax=False):
    from scipy.optimize import Bounds, milp

    integrality = np.zeros_like(lower) if relax else program.integrality(pairs=pairs)
    return milp(
        program.objective,
        constraints=program.constraints,
        integrality=integrality,
        bounds=Bounds(lower, upper),
        options={
            "time_limit": max(float(time_limit), 0.01),
            "mip_rel_gap": MIP_GAP,
            "disp": False,
            # HiGHS's presolve does not look at the time limit: on 50,000 people with places
            # for thousands it ran for 29 s under a 1 s limit, and made the whole solve 5 to
            # 15 times slower than without it (what it removes, mostly people with one
            # candidate arm, costs HiGHS less than the search for it).
            "presolve": False,
        },
    )


def plain_milp(program: Program, time_limit: float):
    """The program with every pair a whole-number variable: the reference the benchmark and
    the tests compare with (slow: HiGHS branches over the pairs)."""
    return _proven(_milp(program, program.lower, program.upper, time_limit, pairs=True), None)


def lp_bound(program: Program, time_limit: float) -> float | None:
    """The LP relaxation's optimum (EE points avoided): no plan can do better."""
    relaxed = _milp(program, program.lower, program.upper, time_limit, pairs=False, relax=True)
    return None if relaxed.x is None else -float(relaxed.fun)


def solve(program: Program, time_limit: float):
    """Solve ``program``: whole counts and groups, continuous pairs, then whole pairs.

    Returns scipy's result for the plan (``x`` None when there is none, with ``status`` and
    ``message`` saying why), with ``bound``, the benefit no plan can exceed as HiGHS proved
    it, and ``mip_gap``, the plan's relative gap to that bound.
    """
    start = time.monotonic()
    result = _milp(program, program.lower, program.upper, time_limit, pairs=False)
    if result.x is None:
        return result
    bound = min(_bound(result), relaxed_bound(program))
    pairs = result.x[: program.m]
    if np.all(np.abs(pairs - np.round(pairs)) <= WHOLE):
        return _proven(result, bound)
    # Fix the counts and groups where the solver put them and make the pairs whole.
    lower, upper = program.lower.copy(), program.upper.copy()
    lower[program.m :] = upper[program.m :] = np.round(result.x[program.m :])
    remaining = time_limit - (time.monotonic() - start)
    whole = _milp(program, lower, upper, remaining, pairs=True)
    if whole.x is None:  # not expected (the structure guarantees a whole plan): the plain MILP
        return plain_milp(program, time_limit - (time.monotonic() - start))
    return _proven(whole, bound)


def relaxed_bound(program: Program) -> float:
    """A bound on every plan's benefit from two relaxations, each dropping constraints: each
    person given their best pair, whatever the arms' places and the budget; and each arm's
    places filled by the people it helps most, as if a person could take every arm, paid for
    by the budget in order of benefit per dollar (the last place in part). A solve stopped by
    its time limit may have proven nothing better (a bound from before its first LP: 13,352 EE
    points where plans reach 696); this one costs a sort per arm and is proven all the same.
    """
    benefit = np.clip(-np.asarray(program.objective[: program.m], dtype=float), 0.0, None)
    if benefit.size == 0:
        return 0.0
    people = np.asarray(program.people)
    best = np.zeros(int(people.max()) + 1)
    np.maximum.at(best, people, benefit)
    taken, price = [], []
    for j in range(program.k):
        helped = np.sort(benefit[program.arm_of == j])[::-1]
        helped = helped[: int(min(program.upper[program.m + j], helped.size))]
        taken.append(helped)
        price.append(np.full(helped.size, 0.0 if program.cost is None else program.cost[j]))
    taken, price = np.concatenate(taken), np.concatenate(price)
    if program.budget is not None and taken.size:
        # a fractional knapsack: the best benefit per dollar first, free places before all
        order = np.argsort(-taken / np.where(price > 0, price, np.finfo(float).tiny), kind="stable")
        taken, price = taken[order], price[order]
        spent = np.cumsum(price)
        full = spent <= program.budget
        whole = int(full.sum())
        left = program.budget - (spent[whole - 1] if whole else 0.0)
        part = taken[whole] * left / price[whole] if whole < taken.size and price[whole] else 0.0
        taken = np.append(taken[:whole], part)
    return min(float(best.sum()), float(taken.sum()))


def _bound(result) -> float:
    dual = getattr(result, "mip_dual_bound", None)
    if dual is None or not np.isfinite(dual):
        return -float(result.fun)
    return -float(dual)


def _proven(result, bound):
    # ``bound`` and ``mip_gap`` in benefit terms (the solver minimises minus the benefit).
    if result.x is None:
        return result
    value = -float(result.fun)
    bound = _bound(result) if bound is None else max(bound, value)
    result.bound = bound
    result.mip_gap = max(bound - value, 0.0) / max(abs(bound), 1e-12)
    return result
