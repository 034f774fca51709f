"""Cohort allocation under budget, capacity and group sizes, checked against brute force."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest

from recommender.errors import InputError
from recommender.policy import (
    MAX_CAPACITY,
    ArmLimits,
    allocate,
    eligibility_matrix,
    limits_from_catalog,
)


def _brute_force(effects, limits, budget, eligible):
    arms = list(effects.columns)
    benefit = -effects.to_numpy()
    best = 0.0
    for choice in itertools.product(range(len(arms) + 1), repeat=len(effects)):
        total, spend, counts = 0.0, 0.0, np.zeros(len(arms), int)
        feasible = True
        for person, c in enumerate(choice):
            if c == len(arms):
                continue
            if benefit[person, c] <= 0 or (eligible is not None and not eligible.iloc[person, c]):
                feasible = False
                break
            total += benefit[person, c]
            spend += limits[arms[c]].cost_per_person
            counts[c] += 1
        if not feasible or (budget is not None and spend > budget + 1e-9):
            continue
        for j, arm in enumerate(arms):
            lim = limits[arm]
            if lim.capacity is not None and counts[j] > lim.capacity:
                feasible = False
            if counts[j] and not any(
                g * lim.group_min <= counts[j] <= g * lim.group_max for g in range(1, counts[j] + 1)
            ):
                feasible = False
        if feasible:
            best = max(best, total)
    return best


@pytest.mark.parametrize("seed", range(12))
def test_matches_brute_force_on_small_cohorts(seed):
    rng = np.random.default_rng(seed)
    n = 7
    effects = pd.DataFrame(
        rng.normal(-2, 2.5, size=(n, 3)),
        columns=["coaching", "peer_group", "mindfulness"],
        index=[f"p{i}" for i in range(n)],
    )
    limits = {
        "coaching": ArmLimits(1400, capacity=int(rng.integers(1, 4))),
        "peer_group": ArmLimits(200, capacity=None, group_min=3, group_max=4),
        "mindfulness": ArmLimits(100, capacity=int(rng.integers(2, 6))),
    }
    budget = float(rng.choice([500, 1800, 3500, 10000]))
    eligible = pd.DataFrame(rng.random((n, 3)) > 0.2, columns=effects.columns, index=effects.index)
    result = allocate(effects, limits, budget=budget, eligible=eligible)
    assert result.status == "optimal"
    assert result.expected_points_avoided == pytest.approx(
        _brute_force(effects, limits, budget, eligible), abs=1e-6
    )
    assert result.total_cost <= budget + 1e-9


def test_constraints_hold_on_a_large_cohort():
    rng = np.random.default_rng(3)
    n = 1500
    effects = pd.DataFrame(
        rng.normal(-1.5, 2, size=(n, 4)),
        columns=["coaching", "mindfulness", "peer_group", "balint_group"],
    )
    limits = {
        "coaching": ArmLimits(1400, capacity=40),
        "mindfulness": ArmLimits(150, capacity=500),
        "peer_group": ArmLimits(250, capacity=300, group_min=6, group_max=10),
        "balint_group": ArmLimits(300, capacity=120, group_min=7, group_max=12),
    }
    result = allocate(effects, limits, budget=60_000)
    counts = result.assignment.value_counts()
    assert result.total_cost <= 60_000
    for arm, lim in limits.items():
        people = int(counts.get(arm, 0))
        assert people <= lim.capacity
        groups = int(result.summary.loc[arm, "groups"])
        if people:
            assert groups * lim.group_min <= people <= groups * lim.group_max
    # everyone who got an arm was expected to benefit from it
    given = result.assignment[result.assignment != "none"]
    benefit = [-effects.loc[i, a] for i, a in given.items()]
    assert min(benefit) > 0
    # budget binds: spending more can only help
    richer = allocate(effects, limits, budget=120_000)
    assert richer.expected_points_avoided >= result.expected_points_avoided


def test_no_one_gets_an_arm_that_is_not_expected_to_help():
    effects = pd.DataFrame({"coaching": [1.0, 0.0, -0.5]}, index=["a", "b", "c"])
    result = allocate(effects, {"coaching": ArmLimits(10)})
    assert result.assignment.tolist() == ["none", "none", "coaching"]


def test_confident_only_requires_the_interval_to_exclude_no_benefit():
    effects = pd.DataFrame({"coaching": [-3.0, -3.0]}, index=["a", "b"])
    upper = pd.DataFrame({"coaching": [-0.5, 0.4]}, index=["a", "b"])
    result = allocate(effects, {"coaching": ArmLimits(10)}, upper=upper, confident_only=True)
    assert result.assignment.tolist() == ["coaching", "none"]


def test_group_arm_is_not_given_to_a_number_that_cannot_form_whole_groups():
    effects = pd.DataFrame({"peer_group": [-1.0] * 11})
    result = allocate(effects, {"peer_group": ArmLimits(0, group_min=6, group_max=10)})
    assert (result.assignment == "peer_group").sum() == 10  # 11 cannot be split into groups of 6-10


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"budget": -1}, "budget"),
        ({"limits": {"coaching": ArmLimits(-5)}}, "coaching.cost_per_person"),
        ({"limits": {"coaching": ArmLimits(1e15)}}, "at most 1,000,000,000"),
        ({"limits": {}}, "no cost/capacity given for arm(s) ['coaching']"),
        ({"limits": {"coaching": ArmLimits(1, group_min=5, group_max=2)}}, "group_min/group_max"),
        ({"confident_only": True}, "upper"),
    ],
)
def test_bad_input_is_named(kwargs, message):
    effects = pd.DataFrame({"coaching": [-1.0, -2.0]})
    limits = kwargs.pop("limits", {"coaching": ArmLimits(1)})
    with pytest.raises(InputError, match=re.escape(message)):
        allocate(effects, limits, **kwargs)


def test_nan_effect_is_named_with_its_row():
    effects = pd.DataFrame({"coaching": [-1.0, np.nan]}, index=["p1", "p2"])
    with pytest.raises(InputError, match="row 'p2' arm 'coaching'"):
        allocate(effects, {"coaching": ArmLimits(1)})


def test_catalog_limits_and_eligibility():
    from recommender.catalog import load_catalog

    catalog = load_catalog()
    limits = limits_from_catalog(catalog)
    assert set(limits) == set(catalog.treatment_arms)
    profiles = pd.DataFrame(
        {
            "role": ["nurse", "physician"],
            "specialty": ["other", "primary_care"],
            "years_in_practice": [4.0, 12.0],
        }
    )
    matrix = eligibility_matrix(catalog, profiles)
    for i, row in profiles.iterrows():
        expected = set(catalog.eligible_arms(row.to_dict())) - {catalog.control}
        assert set(matrix.columns[matrix.loc[i]]) == expected


def test_this_cycles_overrides_replace_the_catalogs_limits():
    from recommender.catalog import load_catalog

    catalog = load_catalog()
    limits = limits_from_catalog(
        catalog,
        ["coaching", "peer_group"],
        capacity={"coaching": 12, "peer_group": 0, "mindfulness": 5},
        cost={"coaching": 900.0},
    )
    assert set(limits) == {"coaching", "peer_group"}  # mindfulness is checked, not planned
    assert limits["coaching"].capacity == 12 and limits["coaching"].cost_per_person == 900.0
    assert limits["peer_group"].capacity == 0  # closed this cycle
    assert limits["peer_group"].cost_per_person == catalog.arm("peer_group").cost_per_person


@pytest.mark.parametrize(
    "overrides, field, accepted",
    [
        ({"capacity": {"yoga": 3}}, "capacity.yoga", "an intervention of catalog"),
        ({"capacity": {"none": 3}}, "capacity.none", "coaching"),
        ({"capacity": {"coaching": 2.5}}, "capacity.coaching", "a whole number of places >= 0"),
        ({"capacity": {"coaching": -1}}, "capacity.coaching", "a whole number of places >= 0"),
        ({"capacity": {"peer_group": 3}}, "capacity.peer_group", "at least 6"),
        ({"cost": {"coaching": -5.0}}, "cost.coaching", "a number of US$ per person >= 0"),
        ({"cost": {"coaching": float("nan")}}, "cost.coaching", "a number of US$ per person >= 0"),
        # Whatever a caller passes is refused with its field, never a crash (numpy cannot take
        # an int beyond 64 bits, float() an int beyond 1e308).
        ({"capacity": {"coaching": "10"}}, "capacity.coaching", "a whole number of places >= 0"),
        ({"capacity": {"coaching": None}}, "capacity.coaching", "a whole number of places >= 0"),
        ({"capacity": {"coaching": True}}, "capacity.coaching", "a whole number of places >= 0"),
        ({"capacity": {"coaching": [3]}}, "capacity.coaching", "a whole number of places >= 0"),
        ({"capacity": {"coaching": float("inf")}}, "capacity.coaching", "a whole number of places"),
        ({"capacity": {"coaching": float("nan")}}, "capacity.coaching", "a whole number of places"),
        (
            {"capacity": {"coaching": -(10**30)}},
            "capacity.coaching",
            "a whole number of places >= 0",
        ),
        ({"cost": {"coaching": "900"}}, "cost.coaching", "a number of US$ per person >= 0"),
        ({"cost": {"coaching": False}}, "cost.coaching", "a number of US$ per person >= 0"),
        ({"cost": {"coaching": 10**400}}, "cost.coaching", "a number of US$ per person >= 0"),
        ({"cost": {"coaching": -(10**5000)}}, "cost.coaching", "a number of US$ per person >= 0"),
        # HiGHS refuses a cost of 1e15 or more in the budget row as a model error, which was
        # reported as "no allocation satisfies the constraints"
        ({"cost": {"coaching": 1e15}}, "cost.coaching", "at most 1,000,000,000"),
    ],
)
def test_bad_overrides_are_refused_naming_the_field(overrides, field, accepted):
    from recommender.catalog import load_catalog

    with pytest.raises(InputError) as refused:
        limits_from_catalog(load_catalog(), **overrides)
    assert str(refused.value).startswith(f"{field}: ")
    assert [p["field"] for p in refused.value.problems] == [field]
    assert accepted in refused.value.problems[0]["accepted"]


@pytest.mark.parametrize(
    "places",
    [10**30, 2**64, 10**400, 1e300, np.int64(2**62), MAX_CAPACITY + 1],
    ids=["1e30", "2**64", "10**400", "1e300", "int64", "one more"],
)
def test_more_places_than_the_largest_capacity_are_refused_by_name(places):
    # The one limit of `recommender allocate --capacity`, /allocate and library callers (the
    # CLI took any number, the service at most MAX_CAPACITY).
    from recommender.catalog import load_catalog

    with pytest.raises(InputError) as refused:
        limits_from_catalog(load_catalog(), ["coaching"], capacity={"coaching": places})
    (problem,) = refused.value.problems
    assert problem["field"] == "capacity.coaching"
    assert f"at most {MAX_CAPACITY:,}" in problem["accepted"]


@pytest.mark.parametrize(
    "places",
    [MAX_CAPACITY, np.int64(MAX_CAPACITY), float(MAX_CAPACITY), 12.0],
    ids=["largest", "int64", "float", "12.0"],
)
def test_any_whole_number_of_places_up_to_the_largest_is_a_capacity_and_the_plan_is_made(places):
    from recommender.catalog import load_catalog

    limits = limits_from_catalog(load_catalog(), ["coaching"], capacity={"coaching": places})
    assert limits["coaching"].capacity == int(places)
    effects = pd.DataFrame({"coaching": [-3.0, -1.0]}, index=["p1", "p2"])
    result = allocate(effects, limits)
    assert result.assignment.tolist() == ["coaching", "coaching"]


def _no_plan_in_time(monkeypatch, status, message):
    import scipy.optimize
    from scipy.optimize import OptimizeResult

    def stopped(*args, **kwargs):  # HiGHS's answer when it stops before any plan
        return OptimizeResult(
            x=None, status=status, message=message, success=False, fun=None, mip_gap=None
        )

    monkeypatch.setattr(scipy.optimize, "milp", stopped)


def test_a_solver_out_of_time_without_a_plan_is_a_timeout_not_bad_input(monkeypatch):
    from recommender.errors import PlanTimeout

    _no_plan_in_time(monkeypatch, 1, "Time limit reached. (HiGHS Status 13: ...)")
    effects = pd.DataFrame({"coaching": [-3.0, -1.0]}, index=["p1", "p2"])
    with pytest.raises(PlanTimeout, match="ran out of time") as stopped:
        allocate(effects, {"coaching": ArmLimits(100)}, time_limit=0.5)
    assert not isinstance(stopped.value, InputError)


def test_constraints_the_solver_proves_unsatisfiable_are_still_bad_input(monkeypatch):
    _no_plan_in_time(monkeypatch, 2, "The problem is infeasible.")
    effects = pd.DataFrame({"coaching": [-3.0]}, index=["p1"])
    with pytest.raises(InputError, match="no allocation satisfies the constraints"):
        allocate(effects, {"coaching": ArmLimits(100)})
