"""A program lead's review of cohort planning: what a plan says when an arm cannot be given to
anyone (too few people for its smallest group, a budget too small for one place or one group),
and a budget that buys whole places at a cost in cents."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_allocate_edges import _allocate, _use_stand_in
from test_policy_planning import _person, _plan, catalog  # noqa: F401  (a fixture)

from recommender.policy import ArmLimits, allocate
from service_fixtures import (  # noqa: F401  (fixtures)
    LinearModel,
    asgi_client,
    auth,
    profile,
    service_home,
)

ARMS = ("coaching", "mindfulness", "peer_group", "resilience_training", "balint_group")
BALINT = [0.0, 0.0, 0.0, 0.0, -3.0]  # only a Balint group is expected to help


def test_a_group_arm_fewer_people_can_take_than_its_smallest_group_is_said(catalog):
    # Five physicians for a Balint group that runs with 7 to 12: nobody can be given it, and
    # the plan says why rather than showing "0 people" beside 24 free places.
    people = [_person(i) for i in range(5)]
    plan = _plan(catalog, people, [BALINT] * 5)
    assert plan.allocated.tolist() == ["none"] * 5
    assert plan.recommended.tolist() == ["balint_group"] * 5
    (note,) = plan.allocation.notes
    assert note.startswith("balint_group: only 5 people may be given it")
    assert "fewer than the 7 its smallest group needs" in note
    assert plan.allocation.to_dict()["notes"] == [note]


def test_an_arm_whose_smallest_group_the_budget_cannot_pay_for_is_said(catalog):
    # Seven physicians could form a Balint group, but seven places cost 7 x US$600 = 4,200.
    people = [_person(i) for i in range(7)]
    plan = _plan(catalog, people, [BALINT] * 7, budget=4000.0)
    assert plan.allocated.tolist() == ["none"] * 7
    assert plan.allocation.notes == (
        "balint_group: its smallest group (7 people at $600) costs $4,200, more than the "
        "budget ($4,000): nobody is given it",
    )
    # with the money for one group, it runs and nothing is said
    enough = _plan(catalog, people, [BALINT] * 7, budget=4200.0)
    assert enough.allocated.tolist() == ["balint_group"] * 7
    assert enough.allocation.notes == ()


def test_a_budget_too_small_for_any_place_says_so_once(catalog):
    people = [_person(i) for i in range(3)]
    effect = [[-6.0, -2.0, 0.0, -1.5, 0.0]] * 3  # coaching, mindfulness, resilience help
    plan = _plan(catalog, people, effect, budget=99.0)
    assert plan.allocated.tolist() == ["none"] * 3
    assert plan.allocation.notes == (
        "the budget ($99) pays for no arm anyone may be given: the least one costs is $100 "
        "(resilience_training, one place); everyone is given usual care",
    )
    # exactly the cost of one place buys it; the arms it cannot pay one place of are named
    one = _plan(catalog, people, effect, budget=100.0)
    assert (one.allocated == "resilience_training").sum() == 1
    assert one.allocation.notes == (
        "coaching: one place costs $1,400, more than the budget ($100): nobody is given it",
        "mindfulness: one place costs $300, more than the budget ($100): nobody is given it",
    )


def test_an_arm_nobody_is_given_for_want_of_benefit_or_places_needs_no_note(catalog):
    # Not given because others do better, or closed by a capacity of 0: nothing to explain
    # beyond the summary's own figures.
    people = [_person(i) for i in range(8)]
    effect = [[-6.0, -2.0, -1.0, -1.5, -0.5]] * 8
    plan = _plan(catalog, people, effect, capacity={"coaching": 0})
    assert "coaching" not in set(plan.allocated)
    assert plan.allocation.notes == ()


def test_a_budget_in_cents_buys_every_place_it_pays_for():
    # 3 x US$0.78 is 2.34, but 2.34 / 0.78 is 2.9999999999999996 in floating point: the
    # people the solver may choose among were cut to the best two, and the plan, one place
    # short, was called optimal.
    effects = pd.DataFrame({"coaching": [-5.0, -4.0, -3.0, -2.0]})
    plan = allocate(effects, {"coaching": ArmLimits(0.78)}, budget=2.34)
    assert plan.assignment.tolist() == ["coaching", "coaching", "coaching", "none"]
    assert plan.expected_points_avoided == pytest.approx(12.0)
    assert plan.status == "optimal"


@pytest.fixture
def linear_model():
    # The service's stand-in model: only a Balint group, expected to help everyone.
    return LinearModel(base={"balint_group": -2.0}, weights={})


def test_the_command_and_the_service_say_why_an_arm_was_given_to_nobody(
    asgi_client, linear_model, monkeypatch, tmp_path, capsys
):
    rows = [profile(person_id=f"p{i}", role="physician") for i in range(5)]
    served = asgi_client.post("/allocate", json={"profiles": rows}, headers=auth("program"))
    assert served.status_code == 200, served.text
    body = served.json()
    assert [a["allocated"] for a in body["assignments"]] == ["none"] * 5
    assert len(body["notes"]) == 1 and body["notes"][0].startswith(
        "balint_group: only 5 people may be given it"
    )
    _use_stand_in(monkeypatch, linear_model)
    code, out = _allocate(rows, tmp_path)
    assert code == 0, capsys.readouterr().err
    assert f"  note: {body['notes'][0]}" in capsys.readouterr().out.splitlines()
    assert pd.read_csv(out)["allocated"].tolist() == ["none"] * 5


def test_notes_hold_only_for_people_the_plan_may_give_an_arm():
    # A person not eligible, or not expected to help, does not count towards a group.
    effects = pd.DataFrame({"balint_group": [-3.0] * 6 + [1.0] * 4})
    eligible = pd.DataFrame({"balint_group": [True] * 5 + [False] + [True] * 4})
    limits = {"balint_group": ArmLimits(600, capacity=24, group_min=7, group_max=12)}
    plan = allocate(effects, limits, eligible=eligible)
    assert np.all(plan.assignment == "none")
    assert plan.notes[0].startswith("balint_group: only 5 people may be given it")


def _thin_for_apps():
    # Coaching learnt from physicians only: no APP in the training data was served it.
    from recommender.model import ARM_ROLE_KEY

    model = LinearModel(base={"coaching": -2.0}, weights={})
    model.metadata = {ARM_ROLE_KEY: {"coaching": {"app": 0, "physician": 40}}, "min_cell": 11}
    return model


def _app(i):
    return profile(
        person_id=f"a{i}", role="app", specialty="internal_medicine", years_in_practice=8.0
    )


def _engine(model):
    from recommender.catalog import load_catalog
    from recommender.service import AuditLog, RecommendationEngine, load_serve_config

    return RecommendationEngine(
        model,
        "7",
        catalog=load_catalog(),
        config=load_serve_config(),
        audit=AuditLog("sqlite://", salt="s"),
    )


def _plan_lines(model, rows):
    from recommender.service._allocation import AllocationRequest, allocate_cohort

    request = AllocationRequest(profiles=rows)
    return allocate_cohort(_engine(model), request, caller_role="program", time_limit=10)


def test_a_plan_line_says_what_recommend_says_of_a_figure_not_measured_on_the_role(
    service_home,
):
    # /recommend tells an APP that coaching's figure is extrapolated from other roles; the
    # plan that gives the same APP coaching said nothing of it.
    model = _thin_for_apps()
    plan = _plan_lines(model, [_app(0), profile(person_id="p0", role="physician")])
    app, physician = plan.assignments
    assert (app.allocated, physician.allocated) == ("coaching", "coaching")
    assert app.note.startswith("Not measured on advanced practice providers (APPs")
    assert "Professional coaching: none of them in the data this model learnt from" in app.note
    assert physician.note is None
    engine = _engine(model)
    answer = engine.recommend([engine.check_row(_app(0))], caller_role="program")[0]
    assert app.note in answer["ranking_note"]


def test_a_plan_line_of_an_evidence_only_model_says_its_figure_is_published_trials(
    service_home,
):
    from recommender.catalog import load_catalog
    from recommender.model import evidence_model

    plan = _plan_lines(evidence_model(load_catalog()), [profile(person_id="p0")])
    (line,) = plan.assignments
    assert line.allocated != "none"
    assert line.note.startswith("These estimates rest on published trials alone")


def test_the_command_says_how_many_were_given_an_arm_not_measured_on_their_role(
    service_home, monkeypatch, tmp_path, capsys
):
    _use_stand_in(monkeypatch, _thin_for_apps())
    rows = [_app(i) for i in range(3)] + [profile(person_id="p0", role="physician")]
    code, out = _allocate(rows, tmp_path)
    assert code == 0, capsys.readouterr().err
    notes = [line for line in capsys.readouterr().out.splitlines() if "Not measured" in line]
    assert notes == [
        "  note: coaching given to 3 of role app: Not measured on advanced practice providers "
        "(APPs: nurse practitioners, physician assistants): Professional coaching: none of "
        "them in the data this model learnt from was served it (0 rows; 11 needed), so its "
        "figure for them is extrapolated from other roles, not measured."
    ]
    assert pd.read_csv(out)["allocated"].tolist() == ["coaching"] * 4


def test_people_tied_for_places_get_the_same_plan_whatever_the_rows_order(catalog):
    # Ten physicians with the same expected benefit from coaching, three places: before, the
    # first three rows got them, so the same cohort exported in another order gave the places
    # to other people. Now a tie is broken by person_id, not by the file's order.
    people = [_person(i) for i in range(10)]
    effect = [[-3.0, 0.0, 0.0, 0.0, 0.0]] * 10
    plans = {}
    for name, order in (("as given", range(10)), ("reversed", range(9, -1, -1))):
        rows = [people[i] for i in order]
        plan = _plan(catalog, rows, [effect[i] for i in order], capacity={"coaching": 3})
        plans[name] = {row["person_id"]: arm for row, arm in zip(rows, plan.allocated)}
    assert plans["as given"] == plans["reversed"]
    assert sum(arm == "coaching" for arm in plans["reversed"].values()) == 3
