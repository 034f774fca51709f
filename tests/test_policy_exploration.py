"""The exploration policy: equipoise, exact probabilities, reproducible draws, safety."""

import hashlib
import json
import sqlite3

import numpy as np
import pytest
from scipy.stats import norm

from recommender.catalog import load_catalog
from recommender.errors import InputError
from recommender.policy import (
    ExplorationRule,
    arm_probabilities,
    assign,
    equipoise_arms,
    expected_cost,
    rank_arms,
)
from recommender.service import AuditLog, RecommendationEngine, load_serve_config
from service_fixtures import LinearModel, profile

# coaching clearly best vs app; peer_group in equipoise with coaching; usual care is not
# (coaching's interval lies below zero).
EFFECTS = {
    "coaching": (-5.0, -8.0, -2.0, 0, 0),
    "peer_group": (-3.0, -6.0, 0.0, 0, 0),
    "app": (2.0, 1.0, 3.0, 0, 0),
}


def test_equipoise_keeps_only_arms_that_may_be_best():
    ranking = rank_arms(EFFECTS)
    assert equipoise_arms(ranking) == ["coaching", "peer_group"]
    # When the best arm's interval includes no change, usual care is in equipoise too.
    unsure = rank_arms({"coaching": (-1.0, -3.0, 1.0, 0, 0)})
    assert equipoise_arms(unsure) == ["coaching", "none"]


@pytest.mark.parametrize("policy", ["greedy", "epsilon", "thompson"])
def test_probabilities_sum_to_one_and_vanish_outside_equipoise(policy):
    p = arm_probabilities(
        rank_arms(EFFECTS),
        ExplorationRule(policy=policy, epsilon=0.3, usual_care_share=0, max_cost=1),
    )
    assert set(p) == {"coaching", "peer_group", "app", "none"}
    assert sum(p.values()) == pytest.approx(1.0, abs=1e-12)
    assert p["app"] == 0.0 and p["none"] == 0.0
    assert p["coaching"] > p["peer_group"]


def test_epsilon_and_greedy_probabilities_are_exact():
    ranking = rank_arms(EFFECTS)
    assert arm_probabilities(
        ranking, ExplorationRule(policy="epsilon", epsilon=0.3, usual_care_share=0, max_cost=1)
    ) == {
        "coaching": pytest.approx(0.85),
        "peer_group": pytest.approx(0.15),
        "none": 0.0,
        "app": 0.0,
    }
    assert arm_probabilities(ranking, ExplorationRule(policy="greedy"))["coaching"] == 1.0
    # explore=False (severe profiles) is greedy whatever the rule.
    assert arm_probabilities(ranking, ExplorationRule(), explore=False)["coaching"] == 1.0


def test_usual_care_keeps_its_share_while_exploring_and_not_when_greedy():
    ranking = rank_arms(EFFECTS)
    for policy in ("epsilon", "thompson"):
        p = arm_probabilities(
            ranking, ExplorationRule(policy=policy, usual_care_share=0.1, max_cost=1)
        )
        assert p["none"] == pytest.approx(0.1) and sum(p.values()) == pytest.approx(1.0)
        assert p["app"] == 0.0
    assert (
        arm_probabilities(
            ranking, ExplorationRule(policy="greedy", usual_care_share=0.1, max_cost=0.1)
        )["none"]
        == 0.0
    )
    assert (
        arm_probabilities(
            ranking, ExplorationRule(usual_care_share=0.1, max_cost=0.1), explore=False
        )["none"]
        == 0.0
    )


def test_thompson_probabilities_match_the_exact_normal_integral():
    ranking = rank_arms(
        {"coaching": (-5.0, -8.0, -2.0, 0, 0), "peer_group": (-3.0, -6.0, 0.0, 0, 0)}
    )
    z = norm.ppf(0.95)
    sd = 3.0 / z  # both intervals are 6 points wide at 90 %
    exact = norm.cdf((-3.0 - -5.0) / np.hypot(sd, sd))  # P(draw coaching < draw peer_group)
    p = arm_probabilities(
        ranking, ExplorationRule(policy="thompson", usual_care_share=0, max_cost=1)
    )
    assert p["coaching"] == pytest.approx(exact, abs=1e-6)
    assert p["peer_group"] == pytest.approx(1 - exact, abs=1e-6)


def test_draws_are_reproducible_and_follow_the_probabilities():
    ranking = rank_arms(EFFECTS)
    rule = ExplorationRule(policy="epsilon", epsilon=0.4, cycle=2, max_cost=1)
    hashes = [hashlib.sha256(f"person-{i}".encode()).hexdigest() for i in range(4000)]
    served = [assign(ranking, h, rule).arm for h in hashes]
    assert served == [assign(ranking, h, rule).arm for h in hashes]  # retries: same arm
    share = served.count("peer_group") / len(served)
    assert share == pytest.approx(0.2, abs=0.02)  # epsilon/2; sd of the share is 0.006
    other_cycle = [
        assign(ranking, h, ExplorationRule(policy="epsilon", epsilon=0.4, cycle=3, max_cost=1)).arm
        for h in hashes
    ]
    assert other_cycle != served  # a new cycle draws afresh
    one = assign(ranking, hashes[0], rule)
    assert one.probability == one.probabilities[one.arm]


def test_bad_settings_are_named():
    with pytest.raises(InputError, match="exploration.policy"):
        ExplorationRule.from_config({"policy": "ucb"})
    with pytest.raises(InputError, match="epsilon"):
        ExplorationRule.from_config({"policy": "epsilon", "epsilon": 1.5})
    with pytest.raises(InputError, match="unknown key"):
        ExplorationRule.from_config({"polcy": "greedy"})


def _engine(tmp_path, rule, half_width=4.0):
    import dataclasses

    config = dataclasses.replace(load_serve_config(), exploration=rule)
    model = LinearModel(half_width={arm: half_width for arm in LinearModel().base})
    audit = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", salt="s")
    return RecommendationEngine(model, "5", catalog=load_catalog(), config=config, audit=audit)


def test_answers_carry_the_assignment_and_the_log_keeps_every_probability(tmp_path):
    engine = _engine(tmp_path, ExplorationRule(policy="thompson", cycle=1))
    rows = [
        engine.check_row(profile(person_id=f"staff-{i:04d}", ee=12 + i % 20)) for i in range(200)
    ]
    answers = engine.recommend(rows, caller_role="program")
    explored = [a for a in answers if a["assignment"]["probability"] < 1]
    assert explored, "wide intervals must leave arms in equipoise"
    assert any(a["recommended"] != a["ranking"][0]["arm"] for a in answers)
    for answer in answers:
        block = answer["assignment"]
        assert block["arm"] == answer["recommended"] and block["policy"] == "thompson"
        assert block["cycle"] == 1
    # A retried request in the same cycle gets the same arm.
    again = engine.recommend(rows[:50], caller_role="program")
    assert [a["recommended"] for a in again] == [a["recommended"] for a in answers[:50]]

    database = sqlite3.connect(tmp_path / "audit.db")
    logged = database.execute(
        "select arm, probability, probabilities, profile, policy from assignments"
    ).fetchall()
    assert len(logged) == 250
    for arm, probability, probabilities, profile_json, _policy in logged:
        table = json.loads(probabilities)
        assert sum(table.values()) == pytest.approx(1.0)
        assert table[arm] == pytest.approx(probability)
        fields = json.loads(profile_json)
        assert "person_id" not in fields and fields["role"] == "physician"
    database.close()
    engine.audit.close()
    for path in tmp_path.glob("audit.db*"):  # the database and its -wal / -shm files
        assert b"staff-0" not in path.read_bytes(), path.name


def test_severe_profiles_are_never_explored_and_crisis_gets_no_assignment(tmp_path):
    engine = _engine(tmp_path, ExplorationRule(policy="epsilon", epsilon=1.0))
    severe = [engine.check_row(profile(person_id=f"s{i}", ee=50, dp=20)) for i in range(40)]
    for answer in engine.recommend(severe, caller_role="program"):
        assert answer["safety"]["level"] == "referral"
        assert answer["assignment"]["probability"] == 1.0
        assert answer["assignment"]["policy"] == "greedy"
        assert answer["recommended"] == answer["ranking"][0]["arm"]
    crisis = engine.recommend([engine.check_row(profile(crisis_risk=True))], caller_role="program")[
        0
    ]
    assert crisis["assignment"] is None and crisis["safety"]["resources"]


def test_exploration_off_serves_the_best_arm(tmp_path):
    engine = _engine(tmp_path, ExplorationRule(policy="greedy"))
    rows = [engine.check_row(profile(person_id=f"g{i}", ee=5 + i)) for i in range(40)]
    for answer in engine.recommend(rows, caller_role="program"):
        assert answer["recommended"] == answer["ranking"][0]["arm"]
        assert answer["assignment"] == {
            "arm": answer["recommended"],
            "probability": 1.0,
            "policy": "greedy",
            "cycle": 0,
        }


def _random_rankings(count, seed=20261203):
    """Rankings of 1 to 5 arms with effects and interval widths of every kind."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        arms = [f"arm{k}" for k in range(rng.integers(1, 6))]
        effects = {}
        for arm in arms:
            centre = rng.normal(-3.0, 3.0)
            half = rng.uniform(0.0, 6.0)
            effects[arm] = (centre, centre - half, centre + half, 0.0, 0.0)
        yield rank_arms(effects)


@pytest.mark.parametrize("policy", ["epsilon", "thompson"])
@pytest.mark.parametrize("max_cost,floor", [(0.04, 0.02), (0.1, 0.0), (0.02, 0.02), (0.0, 0.0)])
def test_exploring_never_gives_up_more_than_max_cost_of_the_best_arms_benefit(
    policy, max_cost, floor
):
    rule = ExplorationRule(policy=policy, epsilon=0.5, usual_care_share=floor, max_cost=max_cost)
    unbounded = ExplorationRule(policy=policy, epsilon=0.5, usual_care_share=floor, max_cost=1)
    bound_bites = 0
    for ranking in _random_rankings(300):
        p = arm_probabilities(ranking, rule)
        best = ranking.arms[0]
        assert sum(p.values()) == pytest.approx(1.0, abs=1e-12)
        assert min(p.values()) >= 0.0
        allowed = max_cost * max(-best.effect, 0.0)
        assert expected_cost(p, ranking) <= allowed + 1e-9
        free = arm_probabilities(ranking, unbounded)
        # Only arms the policy itself may serve get probability (equipoise, usual care's floor).
        assert {a for a, s in p.items() if s > 0} <= {a for a, s in free.items() if s > 0}
        if floor and best.arm != "none" and best.effect < 0:
            assert p["none"] >= floor - 1e-12  # the comparison group keeps its share
        if expected_cost(free, ranking) > allowed + 1e-9:
            bound_bites += 1
            # Bounded exactly at the limit, not below it: exploration is spent in full.
            assert expected_cost(p, ranking) == pytest.approx(allowed, abs=1e-9) or (
                p[best.arm] == pytest.approx(1.0 - (floor if best.arm != "none" else 0.0))
            )
        else:
            assert p == free
    assert bound_bites > 30  # the sample exercises the bound, not just free rankings


def test_the_bounded_draw_is_reproducible_and_logs_the_probability_it_used():
    ranking = rank_arms(EFFECTS)
    rule = ExplorationRule(policy="thompson", cycle=4)
    hashes = [hashlib.sha256(f"person-{i}".encode()).hexdigest() for i in range(3000)]
    given = [assign(ranking, h, rule) for h in hashes]
    assert [g.arm for g in given] == [assign(ranking, h, rule).arm for h in hashes]
    p = arm_probabilities(ranking, rule)
    for g in given[:20]:
        assert g.probabilities == p and g.probability == p[g.arm]
    for arm, share in p.items():  # the served shares follow the logged probabilities
        served = sum(g.arm == arm for g in given) / len(given)
        assert served == pytest.approx(share, abs=4 * np.sqrt(share * (1 - share) / 3000) + 1e-9)


def test_max_cost_is_checked_against_usual_cares_share():
    assert ExplorationRule.from_config({"max_cost": 0.1}).max_cost == 0.1
    with pytest.raises(InputError, match="exploration.max_cost"):
        ExplorationRule.from_config({"max_cost": 1.5})
    with pytest.raises(InputError, match="below usual_care_share"):
        ExplorationRule.from_config({"usual_care_share": 0.05, "max_cost": 0.02})
    assert "at most 0.03 of the best arm's expected benefit" in ExplorationRule().describe()


def test_serve_yaml_defaults_are_the_codes():
    shipped = load_serve_config().exploration
    assert (shipped.policy, shipped.usual_care_share, shipped.max_cost) == (
        ExplorationRule().policy,
        ExplorationRule().usual_care_share,
        ExplorationRule().max_cost,
    )
