"""Cohort planning in seconds: the same optimum as the plain MILP, with the gap it proves.

The plain MILP over every (person, arm) pair, each a whole-number variable, is the reference;
the fast route (only the pairs an optimal plan can use, only the arms' counts and groups whole)
must reach its objective and respect every constraint: budget, capacities, group sizes,
eligibility and floors. The one planning function the service and the CLI call is checked on
what it adds: who may be given what, the recommendation without limits, each person's figures.
"""

import numpy as np
import pandas as pd
import pytest

from recommender.policy import ArmLimits, allocate
from recommender.policy import _program, _solver

ARMS = ["coaching", "mindfulness", "peer_group", "balint_group"]
LIMITS = {
    "coaching": ArmLimits(1400, capacity=40),
    "mindfulness": ArmLimits(300, capacity=50, group_max=25),
    "peer_group": ArmLimits(250, capacity=60, group_min=6, group_max=10),
    "balint_group": ArmLimits(600, capacity=24, group_min=7, group_max=12),
}


def _cohort(n, seed):
    rng = np.random.default_rng(seed)
    effects = pd.DataFrame(
        rng.normal(-1.0, 2.0, size=(n, len(ARMS))), columns=ARMS, index=[f"p{i}" for i in range(n)]
    )
    eligible = pd.DataFrame(rng.random((n, len(ARMS))) < 0.8, columns=ARMS, index=effects.index)
    return effects, eligible


def _plain_milp(effects, eligible, limits, budget):
    benefit, allowed, arms = _program.checked_inputs(effects, limits, budget, eligible, None, False)
    program = _program.build_program(benefit, allowed, arms, limits, budget)
    result = _solver.plain_milp(program, 120)
    assert result.status == 0
    return -result.fun


def _check_constraints(plan, effects, eligible, limits, budget):
    given = plan.assignment
    assert plan.total_cost <= budget + 1e-6 if budget is not None else True
    for arm in ARMS:
        people = int((given == arm).sum())
        lim = limits[arm]
        assert lim.capacity is None or people <= lim.capacity
        groups = plan.summary.loc[arm, "groups"]
        assert groups * lim.group_min <= people <= groups * lim.group_max
        assert eligible.loc[given == arm, arm].all()
        assert (effects.loc[given == arm, arm] < 0).all()
    benefit = sum(-effects.at[p, a] for p, a in given.items() if a != "none")
    assert plan.expected_points_avoided == pytest.approx(benefit, rel=1e-9)


@pytest.mark.parametrize("seed, budget", [(1, 20_000.0), (2, 50_000.0), (3, 8_000.0)])
def test_a_budgeted_plan_is_the_plain_milps_optimum(seed, budget):
    effects, eligible = _cohort(3000, seed)  # 9,600 pairs: beyond the direct route
    plan = allocate(effects, LIMITS, budget=budget, eligible=eligible)
    _check_constraints(plan, effects, eligible, LIMITS, budget)
    assert plan.status == "optimal"
    assert plan.expected_points_avoided == pytest.approx(
        _plain_milp(effects, eligible, LIMITS, budget), rel=1e-6
    )


def test_without_a_budget_the_plan_is_still_the_plain_milps_optimum():
    # No budget and an arm without a capacity: every pair stays in the program.
    effects, eligible = _cohort(2500, 4)
    limits = {**LIMITS, "mindfulness": ArmLimits(300, capacity=None, group_max=25)}
    plan = allocate(effects, limits, budget=None, eligible=eligible)
    _check_constraints(plan, effects, eligible, limits, None)
    assert plan.status == "optimal" and plan.gap <= 1e-6
    assert plan.expected_points_avoided == pytest.approx(
        _plain_milp(effects, eligible, limits, None), rel=1e-6
    )


@pytest.mark.parametrize("seed", [6, 7])
def test_floors_per_role_give_the_plain_milps_optimum_and_hold(seed):
    effects, eligible = _cohort(1200, seed)
    rng = np.random.default_rng(seed)
    roles = pd.DataFrame(
        {
            "role": rng.choice(["physician", "nurse", "resident"], size=len(effects)),
            "gender": "female",
            "setting": "academic",
        },
        index=effects.index,
    )
    floors = {"nurse": 0.05, "resident": 0.04}
    budget = 30_000.0
    plan = allocate(
        effects, LIMITS, budget=budget, eligible=eligible, profiles=roles, floors=floors
    )
    _check_constraints(plan, effects, eligible, LIMITS, budget)
    given = plan.assignment != "none"
    for role, share in floors.items():
        members = roles["role"] == role
        assert given[members].sum() >= np.ceil(share * members.sum())
    # the reference: the same program over every pair, all whole numbers
    benefit, allowed, arms = _program.checked_inputs(effects, LIMITS, budget, eligible, None, False)
    rows = _program.floor_rows(floors, roles, effects.index, allowed)
    reference = _solver.plain_milp(
        _program.build_program(benefit, allowed, arms, LIMITS, budget, rows), 120
    )
    assert reference.status == 0
    assert plan.status == "optimal"
    assert plan.expected_points_avoided == pytest.approx(-reference.fun, rel=1e-6)
    assert plan.bound == pytest.approx(plan.expected_points_avoided, rel=1e-6)


def test_pairs_the_solver_leaves_fractional_are_made_whole_at_the_same_counts(monkeypatch):
    # Two people tie for one coaching place: half a place each is as good for the LP as one
    # whole place. The solver is handed that answer; the plan must still give one person the
    # whole place, at the same objective, within the counts the solver chose.
    effects = pd.DataFrame({"coaching": [-3.0, -3.0, -1.0]}, index=["p1", "p2", "p3"])
    limits = {"coaching": ArmLimits(100, capacity=1)}
    real = _solver._milp
    calls = []

    def half_and_half(program, lower, upper, time_limit, *, pairs, relax=False):
        result = real(program, lower, upper, time_limit, pairs=pairs, relax=relax)
        calls.append(pairs)
        if not pairs and len(calls) == 1:
            x = result.x.copy()
            tied = np.flatnonzero(-program.objective[: program.m] == 3.0)
            x[: program.m] = 0.0
            x[tied] = 0.5
            result.x = x
        return result

    monkeypatch.setattr(_solver, "_milp", half_and_half)
    plan = allocate(effects, limits)
    assert calls == [False, True]  # the counts were fixed and the pairs solved whole
    assert sorted(plan.assignment.tolist()) == ["coaching", "none", "none"]
    assert plan.assignment["p3"] == "none"
    assert plan.expected_points_avoided == pytest.approx(3.0)
    assert plan.status == "optimal"


def test_strata_keep_the_best_pairs_within_each_class():
    effects, eligible = _cohort(500, 5)
    benefit, allowed, arms = _program.checked_inputs(effects, LIMITS, 3000.0, eligible, None, False)
    strata = np.arange(500) % 2
    keep = _program.candidate_pairs(benefit, allowed, arms, LIMITS, 3000.0, strata=strata)
    # $3,000 buys at most 12 places at the cheapest arm: 12 best per arm and class
    for label in (0, 1):
        for j in range(len(arms)):
            rows = np.flatnonzero((strata == label) & allowed[:, j])
            kept = rows[keep[rows, j]]
            assert len(kept) == min(12, len(rows))
            assert benefit[kept, j].min() >= np.sort(benefit[rows, j])[::-1][:12].min()
