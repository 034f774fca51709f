"""A 1,000-row batch answers each person exactly as that person's request alone, on a real
trained model (issue 12: the batch's per-answer work was hoisted and batched, dec07d).

The one-row path takes the other branches of every batched step (rank_arms rather than
rank_many's table, top_contributions rather than one sort of the table, each draw one by one,
explain_many of one), so equal JSON, byte for byte, and equal audit rows pin the batch's
shortcuts to what one answer says:

- every answer's JSON as the service writes it (pydantic's encoder), request id aside, under
  each exploration policy, for batches (compact) and /recommend's full answers;
- what the audit store keeps of each answer (recommendation and assignment rows);
- explain_many against explain one at a time, and rank_many's notes against rank_arms'.
"""

import dataclasses

import pytest
from pydantic_core import to_json

from recommender.catalog import load_catalog
from recommender.explain import explain, explain_many
from recommender.policy import rank_arms, rank_many
from recommender.service import AuditLog, RecommendationEngine, load_serve_config
from test_fastpath4_equivalence import varied_bodies
from test_fastpath7_equivalence import stored_by_request
from test_pipeline_train import use_home

ROWS = 1000


@pytest.fixture(scope="module")
def champion(trained_copy):
    """The trained fixture's champion ``(model, version)``, read from this module's copy."""
    from recommender.registry import load_champion

    with pytest.MonkeyPatch.context() as monkeypatch:
        use_home(monkeypatch, trained_copy)
        return load_champion()


def engine_for(champion, policy: str) -> RecommendationEngine:
    config = load_serve_config()
    rule = dataclasses.replace(config.exploration, policy=policy, cycle=4, epsilon=0.3)
    model, version = champion
    return RecommendationEngine(
        model,
        version,
        catalog=load_catalog(),
        config=dataclasses.replace(config, exploration=rule),
        audit=AuditLog("sqlite://", salt="s"),
    )


def _json(answer) -> bytes:
    return to_json({**answer, "request_id": ""})


@pytest.mark.parametrize("policy", ["thompson", "epsilon", "greedy"])
def test_a_batch_answers_each_person_as_alone_byte_for_byte(champion, policy):
    engine = engine_for(champion, policy)
    rows, _, errors = engine.check_rows(varied_bodies(ROWS, seed=40 + len(policy)))
    assert not errors and len(rows) == ROWS
    together = engine.recommend(rows, caller_role="program", batch_id="b", compact=True)
    alone = [engine.recommend([row], caller_role="program", compact=True)[0] for row in rows]
    # The requests exercise every branch the wording has.
    levels = {a["safety"]["level"] for a in together}
    assert levels == {"crisis", "referral", "routine"}
    assert any(a["excluded"] for a in together)
    assert any(a["outside_training_data"] for a in together)
    assert any(a["ranking_meaningful"] is False for a in together)
    ranked = [a for a in together if a["ranking"]]
    assert any(a["recommended"] != a["ranking"][0]["arm"] for a in ranked) is (policy != "greedy")
    for a, b in zip(together, alone):
        assert _json(a) == _json(b)
    stored = stored_by_request(engine)
    for a, b in zip(together, alone):
        for by_request in stored.values():
            assert by_request.get(a["request_id"]) == by_request.get(b["request_id"])
    assert len(stored["recommendations"]) == 2 * ROWS


def test_full_answers_of_a_batch_equal_each_alone(champion):
    engine = engine_for(champion, "thompson")
    rows = engine.check_rows(varied_bodies(200, seed=7))[0]
    together = engine.recommend(rows, caller_role="program")
    alone = [engine.recommend([row], caller_role="program")[0] for row in rows]
    assert all(item.get("evidence") for a in together for item in a["ranking"])
    for a, b in zip(together, alone):
        assert _json(a) == _json(b)


def test_explain_many_is_explain_one_at_a_time():
    names = {"coaching": "Professional coaching", "none": "Usual care"}
    cases = [
        ("coaching", "peer_group", -4.2, -7.0, -1.4, -1.0),
        ("coaching", "none", 0.8, -1.0, 2.6, 0.0),  # a rise; usual care runner-up
        ("coaching", "mindfulness", -2.0, -3.0, 0.5, -2.04),  # about as well
        ("none", "coaching", 0.0, 0.0, 0.0, 0.3),
        ("none", None, 0.0, 0.0, 0.0, None),
    ]
    care = [{"role": -2.0, "ee": 1.0, "base": -1.2}, {"age": 0.3, "base": 0.5}, None, None, None]
    lead = [{"role": -2.5, "base": -0.7}, None, {"ee": 0.01, "base": 0}, {"ee": -0.4}, None]
    profiles = [{"role": "physician", "ee": 33, "age": 40.5}] * len(cases)
    many = explain_many(cases, care, lead, profiles, names=names, coverage=0.8)
    fields = ("recommended", "runner_up", "effect", "lower", "upper", "runner_up_effect")
    for case, c, n, profile, made in zip(cases, care, lead, profiles, many):
        one = explain(
            **dict(zip(fields, case)),
            versus_usual_care=c,
            versus_runner_up=n,
            profile=profile,
            names=names,
            coverage=0.8,
        )
        assert made == one
    assert "(80% interval" in many[0].sentence and many[1].sentence.startswith("Professional")


def test_rank_many_notes_are_rank_arms_notes():
    figures = [
        [(-5.0, -8.0, -2.0, 0.0, 0.0), (-4.0, -9.0, 1.0, 0.0, 0.0)],  # overlapping
        [(-5.0, -6.0, -4.0, 0.0, 0.0), (-1.0, -2.0, 0.0, 0.0, 0.0)],  # apart
        [(1.0, -1.0, 3.0, 0.0, 0.0), (2.0, 1.0, 3.0, 0.0, 0.0)],  # usual care best
        [(-1.0, -3.0, 1.0, 0.0, 0.0), (0.5, 0.0, 1.0, 0.0, 0.0)],  # benefit not established
    ] * 4  # enough people for the table's own path
    arms = ["coaching", "peer_group"]
    nan = float("nan")
    table = [[(*f, nan, nan, nan, nan) for f in row] for row in figures]
    allowed = [[True, True]] * len(table)
    names = {"coaching": "Professional coaching"}
    many = rank_many(table, arms, allowed, names=names, coverage=0.8)
    one = [rank_arms(dict(zip(arms, row)), names=names, coverage=0.8) for row in table]
    assert many == one
    assert {r.meaningful for r in many} == {True, False}


def test_a_batch_rounds_contributions_as_python_rounds_each():
    import numpy as np

    from recommender.explain import top_contributions, top_contributions_many

    rng = np.random.default_rng(12)
    halves = (rng.integers(-9000, 9000, (400, 4)) + 0.5) / 1000  # 0.0005 apart from a tie
    nudged = halves + rng.integers(-40, 40, (400, 4)) * np.spacing(halves)
    table = np.concatenate([halves, nudged, rng.normal(0, 2, (400, 4))])
    table[::97, 1] = np.nan
    table[::89, 2] = 0.0499999
    names = ["age", "ee", "dp", "pa"]
    profiles = [{"age": 40, "ee": 30, "dp": 10, "pa": 35}] * len(table)
    base = np.zeros((len(table), 1))
    many = top_contributions_many(np.hstack([table, base]), names, profiles, top=4)
    one = [
        top_contributions(dict(zip(names, row)), profile, top=4)
        for row, profile in zip(table.tolist(), profiles)
    ]
    assert [[repr(c.points) for c in row] for row in many] == [
        [repr(c.points) for c in row] for row in one
    ]
    assert many == one
