"""The bound a plan's gap is measured against (dec08a): HiGHS's proven bound, or the planner's
own relaxations where they are tighter. A plan stopped by the time limit before HiGHS proved
anything useful said "within 96.098 % of the best possible" of a plan 25 % short of it."""

import numpy as np
import pandas as pd
import pytest

from recommender.policy import ArmLimits, allocate
from recommender.policy import _program, _solver

ARMS = ["coaching", "mindfulness", "peer_group", "balint_group"]
LIMITS = {
    "coaching": ArmLimits(1400, capacity=15),
    "mindfulness": ArmLimits(300, capacity=20, group_max=25),
    "peer_group": ArmLimits(250, capacity=30, group_min=6, group_max=10),
    "balint_group": ArmLimits(600, capacity=12, group_min=7, group_max=12),
}


def _cohort(n, seed):
    rng = np.random.default_rng(seed)
    index = [f"p{i}" for i in range(n)]
    effects = pd.DataFrame(rng.normal(-1.0, 2.0, size=(n, len(ARMS))), columns=ARMS, index=index)
    eligible = pd.DataFrame(rng.random((n, len(ARMS))) < 0.8, columns=ARMS, index=index)
    return effects, eligible


def _program_of(effects, eligible, budget):
    benefit, allowed, arms = _program.checked_inputs(effects, LIMITS, budget, eligible, None, False)
    return _program.build_program(benefit, allowed, arms, LIMITS, budget)


@pytest.mark.parametrize("seed, n, budget", [(1, 60, None), (2, 80, 9_000.0), (3, 120, 20_000.0)])
def test_the_relaxed_bound_is_never_below_the_optimum(seed, n, budget):
    program = _program_of(*_cohort(n, seed), budget)
    optimum = -_solver.plain_milp(program, 120).fun
    bound = _solver.relaxed_bound(program)
    assert bound >= optimum - 1e-9
    # and it is a bound worth having: not the sum of every positive figure
    assert bound < np.clip(-program.objective[: program.m], 0, None).sum()


def test_a_plan_stopped_before_highs_proved_a_useful_bound_reports_the_relaxed_one(monkeypatch):
    import scipy.optimize

    effects, eligible = _cohort(200, 4)
    honest = allocate(effects, LIMITS, budget=20_000.0, eligible=eligible)
    real = scipy.optimize.milp

    def stopped(*args, **kwargs):
        # HiGHS cut short by its time limit, with the optimum's plan but a bound of nothing
        # solved yet (a hundred times the plan's worth)
        result = real(*args, **kwargs)
        result.status, result.mip_dual_bound = 1, 100 * result.fun
        result.message = "Time limit reached. (HiGHS Status 13: Time limit reached)"
        return result

    monkeypatch.setattr(scipy.optimize, "milp", stopped)
    plan = allocate(effects, LIMITS, budget=20_000.0, eligible=eligible)
    program = _program_of(effects, eligible, 20_000.0)
    relaxed = _solver.relaxed_bound(program)
    value = plan.expected_points_avoided
    assert value == pytest.approx(honest.expected_points_avoided, rel=1e-9)
    assert plan.bound == pytest.approx(relaxed, rel=1e-9)
    assert plan.gap == pytest.approx((relaxed - value) / relaxed, rel=1e-6)
    assert plan.gap < 0.5  # HiGHS's bound alone would have said 99 %


def test_the_budget_tightens_the_relaxed_bound_and_it_stays_a_bound():
    effects, eligible = _cohort(150, 5)
    free = _solver.relaxed_bound(_program_of(effects, eligible, None))
    for budget in (3_000.0, 12_000.0):
        program = _program_of(effects, eligible, budget)
        bound = _solver.relaxed_bound(program)
        assert -_solver.plain_milp(program, 120).fun - 1e-9 <= bound < free
