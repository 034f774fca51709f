"""The batch path's shortcuts give what the per-person reference gives, byte for byte.

Each shortcut of the 1,000-row path (the batch response serialised in one pass, ...) is held
against the slower reference it replaces, on varied requests: crisis flags, referral scores,
offered lists, roles with ineligible arms, and every exploration policy.
"""

import dataclasses
import random

import numpy as np
import pytest

from recommender.catalog import load_catalog
from recommender.cohort import CATEGORIES
from recommender.policy import (
    ExplorationRule,
    arm_probabilities,
    assign,
    assign_many,
    rank_arms,
)
from recommender.service import AuditLog, RecommendationEngine, load_serve_config
from recommender.service._answer_json import batch_response_json
from recommender.service._responses import BatchResponse, Recommendation
from service_fixtures import LinearModel, with_training_support

POLICIES = ("thompson", "epsilon", "greedy")


def varied_bodies(n: int, seed: int) -> list[dict]:
    """Request bodies of every kind the service answers differently."""
    rng = random.Random(seed)
    arms = list(load_catalog().arm_ids)
    bodies = []
    for i in range(n):
        body = {
            "person_id": f"v{seed}-{i}",
            "age": rng.randint(18, 90),
            "gender": rng.choice(CATEGORIES["gender"]),
            "role": rng.choice(CATEGORIES["role"]),
            "specialty": rng.choice(CATEGORIES["specialty"]),
            "setting": rng.choice(CATEGORIES["setting"]),
            "years_in_practice": rng.choice([0.0, 1.5, 12.25, float(rng.randint(0, 60))]),
            "weekly_hours": float(rng.randint(0, 120)),
            "ee": rng.randint(0, 54),
            "dp": rng.randint(0, 30),
            "pa": rng.randint(0, 48),
        }
        # no one practises before 16 (the contract's rule across age and years); no draw added
        body["years_in_practice"] = min(body["years_in_practice"], float(body["age"] - 16))
        if rng.random() < 0.15:  # referral scores: served greedily
            body["ee"], body["dp"] = rng.randint(40, 54), rng.randint(15, 30)
        if rng.random() < 0.3:
            body["offered"] = rng.sample(arms, rng.randint(1, len(arms)))
        if rng.random() < 0.05:
            body["crisis_risk"] = True
        bodies.append(body)
    return bodies


def varied_model() -> LinearModel:
    # Intervals of different widths, so that some people have several arms in equipoise and
    # others one, and effects that cross zero, so usual care is sometimes best.
    return LinearModel(
        base={
            "coaching": 1.0,
            "mindfulness": 0.5,
            "peer_group": 0.8,
            "resilience_training": -0.2,
            "balint_group": 1.3,
        },
        weights={
            "coaching": {"ee": -0.1, "role": -1.5, "weekly_hours": 0.02},
            "mindfulness": {"ee": -0.05, "weekly_hours": -0.01, "age": 0.01},
            "peer_group": {"dp": -0.1, "years_in_practice": 0.03},
            "resilience_training": {"ee": -0.02, "pa": 0.01},
            "balint_group": {"dp": -0.15, "role": 0.4},
        },
        half_width={
            "coaching": 2.5,
            "mindfulness": 0.4,
            "peer_group": 1.5,
            "resilience_training": 3.0,
            "balint_group": 0.8,
        },
    )


def engine_for(policy: str, cycle: int = 1, *, support: bool = False) -> RecommendationEngine:
    config = load_serve_config()
    rule = ExplorationRule(
        policy=policy,
        cycle=cycle,
        epsilon=0.3,
        usual_care_share=config.exploration.usual_care_share,
        max_cost=0.5 if policy == "epsilon" else config.exploration.max_cost,
        coverage=config.exploration.coverage,
    )
    model = varied_model()
    return RecommendationEngine(
        with_training_support(model) if support else model,
        "7",
        catalog=load_catalog(),
        config=dataclasses.replace(config, exploration=rule),
        audit=AuditLog("sqlite://", salt="s"),
    )


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("support", [False, True])
def test_batch_json_is_the_response_models_json(policy, support):
    engine = engine_for(policy, support=support)
    bodies = varied_bodies(400, seed=len(policy))
    rows, _, errors = engine.check_rows([*bodies, {"age": 5}, {"person_id": "x", "offered": ["?"]}])
    answers = engine.recommend(rows, caller_role="program", batch_id="b", compact=True)
    # with support, ages 18 to 90 and every role: many profiles lie outside it, some inside
    outside = [a.get("outside_training_data") for a in answers]
    assert (any(outside) and [] in outside) if support else not any(outside)
    assert any(a["safety"]["level"] == "crisis" for a in answers)
    assert any(a["safety"]["level"] == "referral" for a in answers)
    assert any(a["excluded"] for a in answers) and len(errors) == 2
    envelope = {
        "batch_id": "b",
        "model_version": engine.version,
        "answered": len(answers),
        "rejected": len(errors),
        "result_index": list(range(len(answers))),
        "errors": errors,
        "arms": engine.arm_facts(answers),
        "disclaimer": engine.config.disclaimer,
        "complements": engine.complements,
        "context": engine.context,
    }
    expected = BatchResponse.model_validate({**envelope, "results": answers}).model_dump_json()
    assert batch_response_json(answers, **envelope) == expected.encode()
    # JSON has no NaN: written as the models write it (null).
    ranked = next(a for a in answers if a["explanation"])
    ranked["explanation"]["versus_runner_up"].append(
        {"feature": "x", "value": float("nan"), "points": 0.1}
    )
    expected = BatchResponse.model_validate({**envelope, "results": answers}).model_dump_json()
    assert batch_response_json(answers, **envelope) == expected.encode()


def answers_of(engine, bodies):
    return [engine.recommend([engine.check_row(b)], caller_role="program")[0] for b in bodies]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("support", [False, True])
def test_one_answers_json_is_the_response_models_json(policy, support):
    engine = engine_for(policy, cycle=2, support=support)
    bodies = varied_bodies(150, seed=10 + len(policy))
    answers = answers_of(engine, bodies)
    outside = [a.get("outside_training_data") for a in answers]
    assert (any(outside) and [] in outside) if support else not any(outside)
    for answer in answers:
        expected = Recommendation.model_validate(answer).model_dump_json().encode()
        assert engine.answer_json.recommendation(answer) == expected
    # JSON has no NaN: written as the models write it (null), wherever it hides.
    ranked = next(a for a in answers if a["explanation"] and a["explanation"]["versus_usual_care"])
    ranked["explanation"]["versus_usual_care"][0]["value"] = float("nan")
    ranked["ranking"][0]["dp_effect"] = float("inf")
    ranked["ranking"][0]["pa_upper"] = float("nan")
    expected = Recommendation.model_validate(ranked).model_dump_json().encode()
    assert engine.answer_json.recommendation(ranked) == expected
    # An answer whose catalog facts are not the engine's own goes through the model.
    answer["context"] = {**engine.context, "organisational_change": "elsewhere"}
    expected = Recommendation.model_validate(answer).model_dump_json().encode()
    assert engine.answer_json.recommendation(answer) == expected


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("floor, max_cost", [(0.0, 1.0), (0.02, 0.03), (0.2, 0.25)])
def test_batched_exploration_is_the_per_person_rule_bit_for_bit(policy, floor, max_cost):
    rng = np.random.default_rng(11)
    arms = ("coaching", "mindfulness", "peer_group", "resilience_training", "balint_group")
    rankings = []
    for _ in range(600):
        chosen = rng.choice(arms, size=int(rng.integers(0, len(arms) + 1)), replace=False)
        effects = {}
        for arm in chosen:
            effect = float(rng.choice([rng.normal(-1.5, 2.0), 0.0, -2.0]))
            half = float(rng.choice([rng.uniform(0.05, 4.0), 0.0, 1.0]))
            effects[str(arm)] = (effect, effect - half, effect + half, 0.0, 0.0)
        rankings.append(rank_arms(effects))
    hashes = [f"{i:064x}" for i in range(len(rankings))]
    explore = [i % 5 != 0 for i in range(len(rankings))]
    rule = ExplorationRule(
        policy=policy, epsilon=0.3, cycle=4, usual_care_share=floor, max_cost=max_cost
    )
    together = assign_many(rankings, hashes, rule, explore=explore)
    for ranking, person_hash, flag, given in zip(rankings, hashes, explore, together):
        # One person alone is assigned in plain Python, from arm_probabilities' own rule.
        alone = assign(ranking, person_hash, rule, explore=flag)
        assert given == alone  # the same arm and the very same floats
        assert list(given.probabilities) == list(alone.probabilities)  # in ranking order
        assert given.probabilities == arm_probabilities(ranking, rule, explore=flag)
    if policy != "greedy":
        assert sum(a.explored for a in together) > 100  # the floor and the bound were exercised


def test_audit_json_is_the_standard_encoders():
    from recommender.service._audit import _compact, _compact_record

    rng = random.Random(5)
    values = [
        {"coaching": [-4.25, -6.0, -2.5], "none": [0.0, 0.0, 0.0]},
        {"coaching": 0.9716, "peer_group": 1.2e-07, "none": 0.02, "mindfulness": 1e16},
        {"age": 41, "role": "nurse", "weekly_hours": 55.5, "unit": 'Säule ü "x"\n', "x": None},
        {"nan": float("nan"), "inf": float("-inf"), "flag": True, "nested": {"a": [1, [2.5]]}},
        *({f"k{i}": rng.uniform(-1e6, 1e6) for i in range(8)} for _ in range(50)),
    ]
    for value in values:
        assert _compact_record(value) == _compact(value)
    with pytest.raises(TypeError):
        _compact_record({"a": object()})
