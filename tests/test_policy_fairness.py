"""Fairness of a plan: floors per role held by the allocation program, and the per-group report
of shares eligible and allocated and of the expected benefit, with small cells suppressed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.errors import InputError
from recommender.policy import ArmLimits, allocate


@pytest.fixture()
def cohort():
    rng = np.random.default_rng(0)
    profiles = pd.DataFrame(
        {
            "role": ["physician"] * 40 + ["nurse"] * 20 + ["app"] * 5,
            "gender": (["female", "male"] * 33)[:65],
            "setting": ["academic"] * 30 + ["community"] * 35,
        },
        index=[f"p{i}" for i in range(65)],
    )
    effects = pd.DataFrame(
        {
            # Coaching helps physicians most, so an unconstrained plan under a tight budget
            # gives it only to physicians.
            "coaching": np.r_[rng.uniform(-6, -4, 40), rng.uniform(-2, -1, 20), [-1.5] * 5],
            "mindfulness": rng.uniform(-1.0, -0.5, 65),
        },
        index=profiles.index,
    )
    limits = {"coaching": ArmLimits(1000), "mindfulness": ArmLimits(100, capacity=0)}
    return profiles, effects, limits


def _given_share(allocation, profiles, role):
    return float((allocation.assignment[profiles["role"] == role] != "none").mean())


def test_a_floor_is_held_by_the_plan_and_costs_benefit(cohort):
    profiles, effects, limits = cohort
    free = allocate(effects, limits, budget=4000, profiles=profiles)
    assert _given_share(free, profiles, "nurse") == 0.0
    held = allocate(effects, limits, budget=4000, profiles=profiles, floors={"nurse": 0.1})
    assert _given_share(held, profiles, "nurse") >= 0.1  # 2 of 20 nurses
    assert held.total_cost <= 4000
    assert held.expected_points_avoided < free.expected_points_avoided  # the floor has a price
    assert held.to_dict()["floors"] == {"nurse": 0.1}


def test_floors_that_cannot_all_be_met_within_budget_say_so(cohort):
    profiles, effects, limits = cohort
    with pytest.raises(
        InputError, match=r"floors: the minimum shares per role .*nurse 0\.5.*budget"
    ):
        allocate(effects, limits, budget=4000, profiles=profiles, floors={"nurse": 0.5})


def test_a_floor_above_who_can_be_helped_names_the_role(cohort):
    profiles, effects, limits = cohort
    effects = effects.copy()
    effects.loc[profiles["role"] == "app", :] = 0.5  # nothing is expected to help APPs
    with pytest.raises(InputError, match=r"floors\.app: 0\.4 of 5 means 2 people, but only 0"):
        allocate(effects, limits, profiles=profiles, floors={"app": 0.4})


@pytest.mark.parametrize(
    ("floors", "message"),
    [
        ({"doctor": 0.2}, "floors.doctor: unknown role"),
        ({"nurse": 1.5}, "floors.nurse: 1.5 is not a share"),
    ],
)
def test_bad_floors_are_named(cohort, floors, message):
    profiles, effects, limits = cohort
    with pytest.raises(InputError, match=message):
        allocate(effects, limits, profiles=profiles, floors=floors)


def test_floors_need_roles(cohort):
    _, effects, limits = cohort
    with pytest.raises(InputError, match="floors: need the people's roles"):
        allocate(effects, limits, floors={"nurse": 0.1})


def test_fairness_reports_shares_and_benefit_per_group(cohort):
    profiles, effects, limits = cohort
    plan = allocate(effects, limits, budget=4000, profiles=profiles)
    table = plan.fairness.set_index(["attribute", "group", "arm"])
    assert set(table.index.get_level_values("attribute")) == {"role", "gender", "setting"}
    physicians = table.loc[("role", "physician", "coaching")]
    assert physicians["people"] == 40
    assert physicians["share_eligible"] == 1.0
    assert physicians["share_allocated"] == pytest.approx(4 / 40)
    women = table.loc[("gender", "female", "any")]
    assert women["people"] == 33
    assert women["share_allocated"] == pytest.approx(
        (plan.assignment[profiles["gender"] == "female"] != "none").mean()
    )
    given = plan.assignment == "coaching"
    expected = -effects["coaching"][given & (profiles["role"] == "physician")].sum() / 40
    assert table.loc[("role", "physician", "any")]["benefit_per_person"] == pytest.approx(expected)
    # JSON-ready: NaN becomes None
    records = plan.to_dict()["fairness"]
    assert all(r["share_eligible"] is None or 0 <= r["share_eligible"] <= 1 for r in records)


def test_small_groups_are_suppressed_with_a_complement(cohort):
    profiles, effects, limits = cohort
    plan = allocate(effects, limits, budget=4000, profiles=profiles)
    roles = plan.fairness[plan.fairness["attribute"] == "role"].set_index(["group", "arm"])
    # 5 APPs are under the smallest cell (11); hiding them alone would let the total give them
    # away, so the next smallest group (20 nurses) is hidden too.
    for group in ("app", "nurse"):
        row = roles.loc[(group, "any")]
        assert row["suppressed"] and np.isnan(row["people"]) and np.isnan(row["share_allocated"])
    assert not roles.loc[("physician", "any")]["suppressed"]
