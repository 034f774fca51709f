"""The one planning function (``policy.plan_allocation``) that ``/allocate``, ``recommender
allocate`` and the pipeline call: who may be given what, the plan, the recommendation without
limits and each person's figures, from effects worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.catalog import load_catalog
from recommender.errors import InputError
from recommender.policy import plan_allocation

ARMS = ("coaching", "mindfulness", "peer_group", "resilience_training", "balint_group")
NAN = float("nan")


def _person(i, role="physician"):
    return {
        "person_id": f"p{i}",
        "role": role,
        "gender": "female",
        "setting": "academic",
        "specialty": "internal_medicine",
        "years_in_practice": 10.0,
    }


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _plan(catalog, people, effect, **kwargs):
    effect = np.asarray(effect, dtype=float)
    return plan_allocation(catalog, people, effect, effect - 1.0, effect + 1.0, arms=ARMS, **kwargs)


def test_eligibility_offers_and_missing_estimates_decide_who_may_be_given_what(catalog):
    people = [_person(0), _person(1, role="nurse"), _person(2), _person(3)]
    effect = [
        [-6.0, -2.0, 0.0, -1.0, 0.0],  # coaching is best
        [-6.0, -2.0, 0.0, -1.0, 0.0],  # a nurse: coaching is not offered to nurses
        [NAN, -2.0, 0.0, -1.0, 0.0],  # no estimate for coaching
        [-6.0, -2.0, 0.0, -1.0, 0.0],  # only resilience training offered to this person
    ]
    plan = _plan(catalog, people, effect, offered_to=[None, None, [], ["resilience_training"]])
    assert plan.arms == ARMS
    coaching = ARMS.index("coaching")
    assert plan.allowed[:, coaching].tolist() == [True, False, False, False]
    assert plan.recommended.tolist() == [
        "coaching",
        "mindfulness",
        "mindfulness",
        "resilience_training",
    ]
    # no budget: everyone gets their best allowed arm, with that arm's figures
    assert plan.allocated.tolist() == plan.recommended.tolist()
    assert plan.figures[0].tolist() == [-6.0, -7.0, -5.0]
    assert plan.figures[3].tolist() == [-1.0, -2.0, 0.0]
    assert plan.allocation.status == "optimal"


def test_the_budget_displaces_people_and_usual_care_has_no_figures(catalog):
    people = [_person(0), _person(1)]
    effect = [[-6.0, -2.0, 0.0, 0.0, 0.0], [-5.0, -2.5, 0.0, 0.0, 0.0]]
    # US$1,700 buys one coaching place and one mindfulness place: coaching for the first
    # (6 + 2.5 = 8.5 points) beats coaching for the second (5 + 2 = 7)
    plan = _plan(catalog, people, effect, budget=1700.0)
    assert plan.allocated.tolist() == ["coaching", "mindfulness"]
    assert plan.recommended.tolist() == ["coaching", "coaching"]
    assert plan.allocation.expected_points_avoided == pytest.approx(8.5)
    assert plan.allocation.total_cost == pytest.approx(1700.0)
    cheaper = _plan(catalog, people, effect, budget=299.0)
    assert cheaper.allocated.tolist() == ["none", "none"]
    assert cheaper.figures.tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]


def test_a_frame_and_a_list_of_profiles_give_the_same_plan(catalog):
    rng = np.random.default_rng(3)
    people = [_person(i, role=("physician", "nurse", "resident", "app")[i % 4]) for i in range(60)]
    effect = rng.normal(-1.0, 2.0, size=(60, len(ARMS)))
    from_rows = _plan(catalog, people, effect, budget=5000.0)
    from_frame = _plan(catalog, pd.DataFrame(people), effect, budget=5000.0)
    assert from_rows.allocated.tolist() == from_frame.allocated.tolist()
    assert from_rows.allocation.fairness.equals(from_frame.allocation.fairness)


def test_offered_arms_are_checked_against_the_catalog_and_the_model(catalog):
    effect = [[-1.0] * len(ARMS)]
    with pytest.raises(InputError) as unknown:
        _plan(catalog, [_person(0)], effect, offered=["yoga"])
    assert unknown.value.problems[0]["field"] == "offered"
    assert "yoga" in str(unknown.value)
    with pytest.raises(InputError, match="the model has no effects for"):
        plan_allocation(
            catalog,
            [_person(0)],
            [[-1.0]],
            [[-2.0]],
            [[0.0]],
            arms=("mindfulness",),
            offered=["coaching"],
        )
    only = _plan(catalog, [_person(0)], effect, offered=["mindfulness"])
    assert only.arms == ("mindfulness",) and only.allocated.tolist() == ["mindfulness"]


def test_nobody_to_plan_for_is_usual_care_but_the_limits_are_still_checked(catalog):
    empty = plan_allocation(
        catalog, [], np.zeros((0, 5)), np.zeros((0, 5)), np.zeros((0, 5)), arms=ARMS
    )
    assert empty.allocated.size == 0 and empty.allocation.status == "optimal"
    assert empty.allocation.summary["people"].tolist() == [0] * len(ARMS)
    with pytest.raises(InputError) as bad:
        _plan(catalog, [], np.zeros((0, 5)), capacity={"peer_group": 3})
    assert bad.value.problems[0]["field"] == "capacity.peer_group"


@pytest.mark.parametrize("budget", [-5.0, float("nan"), float("inf"), "lots", True])
def test_a_bad_budget_is_refused_by_name_even_with_nobody_to_plan_for(catalog, budget):
    # The budget is an option like the capacities: checked in the one place every caller's
    # options are checked, not only when there is someone for the solver to plan.
    with pytest.raises(InputError) as bad:
        _plan(catalog, [], np.zeros((0, 5)), budget=budget)
    (problem,) = bad.value.problems
    assert problem["field"] == "budget" and "a number >= 0 (US$)" in problem["accepted"]
    assert bad.value.args[0].startswith("budget: ")


def test_the_budget_is_checked_with_the_other_options(catalog):
    from recommender.policy import check_plan_options

    with pytest.raises(InputError) as bad:
        check_plan_options(catalog, capacity={"peer_group": 3}, budget=-1)
    assert [p["field"] for p in bad.value.problems] == ["capacity.peer_group", "budget"]
    assert check_plan_options(catalog, budget=0) == check_plan_options(catalog)
