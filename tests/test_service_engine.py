"""The engine without HTTP: one vectorized model call, crisis never reaches the model, every
number traceable to the model, every answer in the audit log."""

import pytest

from recommender.catalog import load_catalog
from recommender.errors import InputError
from recommender.service import (
    AuditLog,
    AuditUnavailable,
    RecommendationEngine,
    load_serve_config,
)
from service_fixtures import LinearModel, profile, with_training_support


@pytest.fixture
def engine():
    return RecommendationEngine(
        LinearModel(),
        "5",
        catalog=load_catalog(),
        config=load_serve_config(),
        audit=AuditLog("sqlite://", salt="s"),
    )


def engine_with_support():
    return RecommendationEngine(
        with_training_support(LinearModel()),
        "5",
        catalog=load_catalog(),
        config=load_serve_config(),
        audit=AuditLog("sqlite://", salt="s"),
    )


def test_answers_name_the_fields_outside_the_training_data_and_say_so():
    engine = engine_with_support()
    rows = [
        engine.check_row(profile(person_id="inside")),
        engine.check_row(profile(person_id="at-max", age=64, weekly_hours=80.0)),
        engine.check_row(profile(person_id="above", age=65)),
        engine.check_row(profile(person_id="rare", role="app", weekly_hours=80.5)),
    ]
    for compact in (False, True):  # /recommend's answer and a batch's
        answers = engine.recommend(rows, caller_role="program", compact=compact)
        outside = [a["outside_training_data"] for a in answers]
        assert outside[:2] == [[], []]
        assert outside[2] == [
            {"field": "age", "value": 65, "seen": "the training rows range from 25 to 64"}
        ]
        assert outside[3] == [
            {"field": "role", "value": "app", "seen": "3 training rows (fewer than 11)"},
            {
                "field": "weekly_hours",
                "value": 80.5,
                "seen": "the training rows range from 30 to 80",
            },
        ]
        notes = [a["ranking_note"] for a in answers]
        assert not any("extrapolated" in note for note in notes[:2])
        assert "(age 65: the training rows range from 25 to 64)" in notes[2]
        assert "its effects are extrapolated and their 90% intervals may not hold" in notes[3]
    single = engine.recommend([rows[2]], caller_role="program")[0]
    assert single["outside_training_data"] == outside[2]


def test_a_model_that_records_no_training_data_says_nothing_of_it(engine):
    answers = engine.recommend(
        [engine.check_row(profile(age=90)), engine.check_row(profile(crisis_risk=True))],
        caller_role="program",
    )
    assert [a.get("outside_training_data") for a in answers] == [None, None]
    assert "extrapolated" not in answers[0]["ranking_note"]
    # nor does a crisis answer, which no model gives
    crisis = engine_with_support().recommend(
        [engine.check_row(profile(age=90, crisis_risk=True))], caller_role="program"
    )[0]
    assert crisis.get("outside_training_data") is None


def test_numbers_come_from_the_model(engine):
    row = engine.check_row(profile())
    answer = engine.recommend([row], caller_role="program")[0]
    ranking = {a["arm"]: a for a in answer["ranking"]}
    # coaching: -2 - 0.1*30 - 1.5 (physician) + 0.02*55 = -5.4, interval +-1
    assert ranking["coaching"]["ee_effect"] == pytest.approx(-5.4)
    bounds = (ranking["coaching"]["ee_lower"], ranking["coaching"]["ee_upper"])
    assert bounds == pytest.approx((-6.4, -4.4))
    assert ranking["coaching"]["dp_effect"] == pytest.approx(-1.8)
    # every effect has its interval, at the same level: DP and PA too (the fake's thirds and
    # quarters of EE's; figures are rounded to 0.001 points)
    coaching = ranking["coaching"]
    assert (coaching["dp_lower"], coaching["dp_upper"]) == (-2.133, -1.467)
    assert (coaching["pa_effect"], coaching["pa_lower"], coaching["pa_upper"]) == pytest.approx(
        (1.35, 1.1, 1.6)
    )
    # usual care against itself: exactly no change, in every outcome
    assert [
        ranking["none"][f"{o}_{k}"]
        for o in ("ee", "dp", "pa")
        for k in ("effect", "lower", "upper")
    ] == [0.0] * 9
    assert answer["recommended"] == "coaching" and answer["ranking"][0]["rank"] == 1
    assert ranking["coaching"]["cost_per_person"] == load_catalog().arm("coaching").cost_per_person
    explanation = answer["explanation"]
    assert explanation["versus_usual_care"][0] == {"feature": "ee", "value": 30, "points": -3.0}
    assert explanation["runner_up"] == answer["ranking"][1]["arm"]
    assert explanation["sentence"].startswith(
        "Professional coaching is expected to lower emotional exhaustion by 5.4"
    )


def test_batch_is_one_model_call_and_rows_keep_their_order(engine):
    rows = [engine.check_row(profile(person_id=f"p{i}", ee=10 + i % 40)) for i in range(300)]
    answers = engine.recommend(rows, caller_role="program")
    assert engine.model.calls == [300]
    assert len(answers) == 300 and engine.audit.count() == 300
    single = engine.recommend([rows[17]], caller_role="program")[0]
    assert answers[17]["ranking"] == single["ranking"]
    assert answers[17]["explanation"] == single["explanation"]


def test_crisis_rows_never_reach_the_model(engine):
    answer = engine.recommend([engine.check_row(profile(crisis_risk=True))], caller_role="program")[
        0
    ]
    assert engine.model.calls == []
    assert answer["recommended"] is None and answer["ranking"] == []
    assert answer["explanation"] is None
    assert answer["safety"]["level"] == "crisis"
    assert any("988" in r["name"] + r["contact"] for r in answer["safety"]["resources"])
    assert engine.audit.export()[0]["safety_level"] == "crisis"


def test_severe_profile_gets_referral_and_ranking(engine):
    answer = engine.recommend([engine.check_row(profile(ee=45, dp=20))], caller_role="program")[0]
    assert answer["safety"]["level"] == "referral" and "confidential" in answer["safety"]["notice"]
    assert answer["recommended"] == "coaching" and answer["ranking"]


def test_eligibility_and_offered(engine):
    nurse = engine.check_row(profile(role="nurse", offered=["coaching", "mindfulness"]))
    answer = engine.recommend([nurse], caller_role="program")[0]
    arms = [a["arm"] for a in answer["ranking"]]
    eligible = load_catalog().eligible_arms(nurse)
    assert set(arms) <= set(eligible) | {"none"} and "mindfulness" in arms
    assert {e["arm"] for e in answer["excluded"]} == {"coaching"} - set(eligible)


def test_usual_care_recommended_when_nothing_helps():
    model = LinearModel(base={"coaching": 1.0, "mindfulness": 2.0}, weights={})
    engine = RecommendationEngine(
        model,
        "1",
        catalog=load_catalog(),
        config=load_serve_config(),
        audit=AuditLog("sqlite://", salt="s"),
    )
    answer = engine.recommend([engine.check_row(profile())], caller_role="program")[0]
    assert answer["recommended"] == "none"
    assert answer["explanation"]["sentence"].startswith("No offered intervention")
    assert answer["explanation"]["runner_up"] == "coaching"


def test_overlap_flag_reaches_the_answer():
    model = LinearModel(
        base={"coaching": -2.0, "mindfulness": -1.9},
        weights={},
        half_width={"coaching": 3.0, "mindfulness": 3.0},
    )
    engine = RecommendationEngine(
        model,
        "1",
        catalog=load_catalog(),
        config=load_serve_config(),
        audit=AuditLog("sqlite://", salt="s"),
    )
    answer = engine.recommend([engine.check_row(profile())], caller_role="program")[0]
    assert answer["ranking_meaningful"] is False
    assert "not meaningful" in answer["ranking_note"]


def test_unknown_offered_arm_and_bad_fields(engine):
    with pytest.raises(InputError) as caught:
        engine.check_row(profile(offered=["yoga"]), prefix="profiles[3]")
    assert caught.value.problems[0]["field"] == "profiles[3].offered[0]"
    with pytest.raises(InputError) as caught:
        engine.check_row({**profile(), "ee": 99, "name": "Dr X"}, prefix="profiles[0]")
    fields = {p["field"]: p for p in caught.value.problems}
    assert fields["profiles[0].ee"]["value"] == 99
    assert fields["profiles[0].ee"]["accepted"] == "an integer from 0 to 54"
    assert "known fields" in fields["profiles[0].name"]["accepted"]


def test_nothing_is_answered_when_the_audit_cannot_be_written(engine, monkeypatch):
    def broken(records):
        raise OSError("disk full")

    monkeypatch.setattr(engine.audit, "append", broken)
    # The engine hands its records over before it words the answers, then waits for them.
    monkeypatch.setattr(engine.audit, "start_append", broken)
    with pytest.raises(AuditUnavailable):
        engine.recommend([engine.check_row(profile())], caller_role="program")


def test_every_cost_shown_says_whether_it_is_an_assumption(engine):
    # The catalog marks most costs as assumptions (defaults to replace); the answers showed
    # cost_per_person alone, as if it were a price.
    from recommender.service._responses import Recommendation

    catalog = load_catalog()
    answer = engine.recommend([engine.check_row(profile())], caller_role="program")[0]
    for item in answer["ranking"]:
        arm = catalog.arm(item["arm"])
        assert item["cost_is_assumption"] is arm.cost_is_assumption
        assert item["cost_basis"] == " ".join(arm.cost_basis.split())
    assert any(item["cost_is_assumption"] for item in answer["ranking"])
    # The same in what is sent: the response model's JSON and the fast path's, and a batch's
    # arms map.
    sent = Recommendation.model_validate(answer).model_dump(mode="json")
    assert all("cost_is_assumption" in item for item in sent["ranking"])
    assert (
        engine.answer_json.recommendation(answer)
        == Recommendation.model_validate(answer).model_dump_json().encode()
    )
    assert all("cost_basis" in facts for facts in engine.arm_facts([answer]).values())


def test_usual_care_alone_is_not_said_to_be_extrapolated():
    # a nurse offered only coaching (which the catalog does not offer nurses), older than
    # everyone trained on: the field is listed, but no effect is shown to call extrapolated
    engine = engine_with_support()
    row = engine.check_row(profile(person_id="x", age=65, role="nurse", offered=["coaching"]))
    (answer,) = engine.recommend([row], caller_role="program")
    assert [entry["arm"] for entry in answer["ranking"]] == ["none"]
    assert [item["field"] for item in answer["outside_training_data"]] == ["age"]
    assert "extrapolated" not in answer["ranking_note"]
    # with an arm ranked, the same profile's note says so
    row = engine.check_row(profile(person_id="y", age=65, role="nurse"))
    (answer,) = engine.recommend([row], caller_role="program")
    assert "extrapolated" in answer["ranking_note"]
