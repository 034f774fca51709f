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


def win_probabilities(effects, sd):
    """P(each arm's draw is the lowest), by scipy's adaptive quadrature, one person at a time.

    An arm with ``sd`` 0 (usual care) is a point: the continuous arms win only below the
    lowest point, and that point (the first of equal ones) wins when every draw lies above it.
    """
    import math

    from scipy import integrate

    def above(x, j):  # P(X_j > x)
        return 0.5 * math.erfc((x - effects[j]) / (sd[j] * math.sqrt(2.0)))

    continuous = [j for j in range(len(effects)) if sd[j] > 0]
    points = [j for j in range(len(effects)) if sd[j] <= 0]
    lowest = min((effects[j] for j in points), default=math.inf)
    out = []
    for k in range(len(effects)):
        if sd[k] <= 0:
            first = min(j for j in points if effects[j] == lowest)
            out.append(math.prod(above(lowest, j) for j in continuous) if k == first else 0.0)
            continue

        def integrand(x, k=k):
            density = math.exp(-0.5 * ((x - effects[k]) / sd[k]) ** 2) / (
                sd[k] * math.sqrt(2.0 * math.pi)
            )
            return density * math.prod(above(x, j) for j in continuous if j != k)

        lower, upper = effects[k] - 12 * sd[k], min(effects[k] + 12 * sd[k], lowest)
        if upper <= lower:
            out.append(0.0)
            continue
        breaks = sorted(effects[j] + c * sd[j] for j in continuous for c in (-3, 0, 3))
        value, _ = integrate.quad(
            integrand,
            lower,
            upper,
            points=[b for b in breaks if lower < b < upper] or None,
            limit=500,
            epsabs=1e-13,
        )
        out.append(value)
    return np.array(out)


def test_thompson_shares_are_the_per_person_formula():
    from scipy.stats import norm

    from recommender.policy._exploration import equipoise_arms

    from recommender.policy import expected_cost

    # max_cost=1: wherever exploring costs at most the best arm's whole benefit, the shares
    # are the Thompson win probabilities themselves (elsewhere the cost bound mixes them
    # towards the best).
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
        wins = win_probabilities(effects, sd)
        shares = dict(zip(candidates, wins.tolist()))
        if expected_cost(shares, ranking) > max(-ranking.arms[0].effect, 0.0):
            continue
        got = [assignment.probabilities[a] for a in candidates]
        assert got == pytest.approx(wins.tolist(), abs=1e-6)
        checked += 1
    assert checked >= 30  # the formula was compared on enough people to mean something


@pytest.mark.parametrize("seed", [11, 12])
def test_thompson_shares_are_exact_whatever_the_spreads(seed):
    """Spreads a thousand times apart, usual care (a point at zero) in equipoise, ties."""
    from recommender.policy import arm_probabilities, expected_cost

    rng = np.random.default_rng(seed)
    rule = ExplorationRule(policy="thompson", usual_care_share=0, max_cost=1, coverage=0.9)
    z = 1.6448536269514722  # the 95th percentile: a 90 % interval is effect -/+ z sd
    compared = with_point = 0
    for case in range(60):
        k = int(rng.integers(2, 6))
        effects = rng.normal(-1.0, 1.5, k)
        sd = rng.uniform(0.2, 2.0, k) * np.exp(rng.normal(0.0, 2.0, k))
        if case % 5 == 0:
            effects[1] = effects[0]  # a tie in effect, spreads differing
        ranking = rank_arms(
            {
                arm: (e, e - z * s, e + z * s, 0.0, 0.0)
                for arm, e, s in zip(ARMS, effects.tolist(), sd.tolist())
            }
        )
        candidates = [a.arm for a in ranking.arms if a.lower <= ranking.arms[0].upper]
        if len(candidates) == 1:
            continue
        by_arm = {a.arm: a for a in ranking.arms}
        exact = win_probabilities(
            [by_arm[a].effect for a in candidates],
            [(by_arm[a].upper - by_arm[a].lower) / (2 * z) for a in candidates],
        )
        if expected_cost(dict(zip(candidates, exact)), ranking) > max(-effects.min(), 0.0):
            continue  # the cost bound mixes the shares towards the best arm here
        got = arm_probabilities(ranking, rule)
        assert [got[a] for a in candidates] == pytest.approx(exact.tolist(), abs=1e-6)
        compared += 1
        with_point += "none" in candidates
    # enough people compared, usual care (a point at zero) among the candidates of many
    assert compared >= 30 and with_point >= 10
