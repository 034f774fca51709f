"""Cohort planning in seconds: the same optimum as the plain MILP, or a proven gap <= 0.1 %.

The plain MILP over every (person, arm) pair is the reference; the fast routes (keeping only
the pairs an optimal plan can use, and the LP relaxation with its integral part fixed) must
reach its objective (exactly, or within the gap they report) and respect every constraint.
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


def test_without_a_budget_the_lp_route_is_within_its_proven_gap():
    effects, eligible = _cohort(2500, 4)
    limits = {**LIMITS, "mindfulness": ArmLimits(300, capacity=None, group_max=25)}
    plan = allocate(effects, limits, budget=None, eligible=eligible)
    _check_constraints(plan, effects, eligible, limits, None)
    assert plan.gap <= 1e-3
    best = _plain_milp(effects, eligible, limits, None)
    assert plan.expected_points_avoided >= best * (1 - 1e-3) - 1e-9
    assert plan.expected_points_avoided <= best * (1 + 1e-6) + 1e-9


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
