"""assign_many: the whole batch's exploration draws at once give each person's own assignment."""

import numpy as np
import pytest

from recommender.policy import ExplorationRule, assign, assign_many, rank_arms

ARMS = ("coaching", "peer_group", "mindfulness", "balint_group", "resilience_training")


def rankings(n, seed=3):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(1, len(ARMS) + 1))
        effects = {}
        for arm in rng.choice(ARMS, size=k, replace=False):
            effect = float(rng.normal(-2, 2))
            half = float(rng.uniform(0.2, 4))
            effects[str(arm)] = (effect, effect - half, effect + half, 0.0, 0.0)
        out.append(rank_arms(effects))
    return out


@pytest.mark.parametrize("policy", ["thompson", "epsilon", "greedy"])
def test_many_at_once_equal_one_by_one(policy):
    rule = ExplorationRule(policy=policy, cycle=2)
    ranked = rankings(300)
    hashes = [f"{i:064x}" for i in range(len(ranked))]
    explore = [i % 7 != 0 for i in range(len(ranked))]  # some severe profiles: greedy
    together = assign_many(ranked, hashes, rule, explore=explore)
    alone = [assign(r, h, rule, explore=e) for r, h, e in zip(ranked, hashes, explore)]
    assert together == alone  # the same arms and the very same probabilities, bit for bit
    explored = [a for a in together if a.explored]
    assert policy == "greedy" or len(explored) > 50  # the draws were really exercised
    assert all(abs(sum(a.probabilities.values()) - 1) < 1e-9 for a in together)


def test_thompson_shares_are_the_per_person_formula():
    from scipy.stats import norm

    from recommender.policy._exploration import _DRAWS, _standard_draws, equipoise_arms

    from recommender.policy import expected_cost

    # max_cost=1: wherever exploring costs at most the best arm's whole benefit, the shares
    # are the Thompson wins themselves (elsewhere the cost bound mixes them towards the best).
    rule = ExplorationRule(policy="thompson", usual_care_share=0, max_cost=1)
    ranked = rankings(120, seed=5)
    together = assign_many(ranked, ["ab"] * len(ranked), rule, explore=[True] * len(ranked))
    checked = 0
    for ranking, assignment in zip(ranked, together):
        candidates = equipoise_arms(ranking)
        if len(candidates) == 1:
            continue
        by_arm = {a.arm: a for a in ranking.arms}
        effects = np.array([by_arm[a].effect for a in candidates])
        sd = np.array([by_arm[a].upper - by_arm[a].lower for a in candidates]) / (
            2.0 * norm.ppf(0.5 + rule.coverage / 2.0)
        )
        draws = effects + sd * _standard_draws(len(candidates))
        wins = np.bincount(np.argmin(draws, axis=1), minlength=len(candidates)) / _DRAWS
        shares = dict(zip(candidates, wins.tolist()))
        if expected_cost(shares, ranking) > max(-ranking.arms[0].effect, 0.0):
            continue
        assert [assignment.probabilities[a] for a in candidates] == wins.tolist()
        checked += 1
    assert checked >= 30  # the formula was compared on enough people to mean something
