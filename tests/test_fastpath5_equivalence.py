"""The batch path's vectorised decisions give what the one-person functions give, bit for bit.

Each vectorised function of the 1,000-row path is held against the one-person function it
stands for, on varied rows: ties (usual care's zero, -0.0, equal arms), masks of every shape,
intervals that do and do not overlap, contributions that are zero, tied at the cut or not
finite. The service's answers themselves are held against the per-person path in
``tests/test_fastpath4_equivalence.py``.
"""

import random

import numpy as np
import pytest

from recommender.explain import explain, top_contributions, top_contributions_many
from recommender.policy import rank_arms, rank_many

ARMS = ["coaching", "mindfulness", "peer_group", "resilience_training", "balint_group"]
NAMES = {"coaching": "Coaching", "peer_group": "Peer support group"}


def random_figures(rng: random.Random) -> tuple:
    # Few distinct values, so that ties (with each other and with usual care's 0) are common.
    effect = rng.choice([0.0, -0.0, -1.5, -1.5, 2.0, -3.25, round(rng.uniform(-5, 5), 3)])
    lower = effect - rng.choice([0.0, 0.5, 2.0, 4.0])
    upper = effect + rng.choice([0.0, 0.5, 2.0, 4.0])
    dp = rng.choice([float("nan"), -0.7, 1.25])
    pa = rng.choice([float("nan"), 0.3])
    # (effect, lower, upper, dp, pa, dp's interval, pa's interval), as the engine's figures
    return (
        effect,
        lower,
        upper,
        dp,
        pa,
        dp - 0.5,
        dp + 0.5,
        pa - 0.25,
        pa + rng.choice([0.0, 1.0]),
    )


@pytest.mark.parametrize("max_overlap", [0.0, 0.5, 1.0])
def test_rank_many_is_rank_arms_for_each_person(max_overlap):
    rng = random.Random(int(max_overlap * 10) + 5)
    figures = [[random_figures(rng) for _ in ARMS] for _ in range(600)]
    allowed = np.array([[rng.random() < 0.7 for _ in ARMS] for _ in figures])
    allowed[:20] = True  # every arm
    allowed[20:40] = False  # usual care alone
    rankings = rank_many(
        figures,
        ARMS,
        allowed,
        control="none",
        max_overlap=max_overlap,
        names=NAMES,
        coverage=0.8,
    )
    assert len(rankings) == len(figures)
    for start in (0, 15, 35):  # a few people are ranked one by one: the same rankings
        few = rank_many(
            figures[start : start + 7],
            ARMS,
            allowed[start : start + 7],
            control="none",
            max_overlap=max_overlap,
            names=NAMES,
            coverage=0.8,
        )
        assert few == rankings[start : start + 7]
    for row, keep, ranking in zip(figures, allowed, rankings):
        expected = rank_arms(
            {arm: values for arm, values, ok in zip(ARMS, row, keep) if ok},
            control="none",
            max_overlap=max_overlap,
            names=NAMES,
            coverage=0.8,
        )
        assert ranking == expected  # arms (every float, NaN aside), meaning, overlap, note
        assert [repr(v) for a in ranking.arms for v in a] == [
            repr(v) for a in expected.arms for v in a
        ]  # NaN and the sign of zero too


def test_rank_many_refuses_a_mask_of_the_wrong_shape_and_unranked_effects():
    figures = [[(-1.0, -2.0, 0.0, 0.0, 0.0)] * 2]
    with pytest.raises(ValueError, match="people x arms"):
        rank_many(figures, ["a", "b"], [[True]])
    with pytest.raises(ValueError, match="finite"):
        rank_many([[(float("nan"),) * 5, (-1.0,) * 5]], ["a", "b"], [[True, True]])
    assert rank_many([], ["a"], np.zeros((0, 1), dtype=bool)) == []


def picked_then_chosen(row, names, profile, top):
    # The service's rule before top_contributions_many: the `top` largest by absolute value
    # (stable, feature order) picked in one sort, then top_contributions on those.
    values = np.asarray(row[:-1], dtype=float)
    picked = np.argsort(-np.abs(values), kind="stable")[:top]
    return top_contributions({names[j]: values[j] for j in picked.tolist()}, profile, top=top)


@pytest.mark.parametrize("top", [1, 3, 5])
def test_top_contributions_many_is_top_contributions_for_each_row(top):
    rng = np.random.default_rng(top)
    names = ["role", "ee", "age", "weekly_hours", "setting", "dp", "pa", "extra_feature"]
    table = rng.choice([0.0, -0.0, 0.5, -0.5, 1.25, -2.0, 0.1234567], size=(800, len(names) + 1))
    table[:100] = rng.normal(size=(100, len(names) + 1))  # no ties
    table[100:110, 2] = np.inf
    table[110:120, 3] = np.nan
    table[120:130, :-1] = 0.0
    profiles = [
        {"role": "nurse", "ee": int(k % 54), "age": float(k), "setting": "community"}
        for k in range(len(table))
    ]
    rows = top_contributions_many(table, names, profiles, top=top)
    assert len(rows) == len(table)
    for k, (row, profile, chosen) in enumerate(zip(table, profiles, rows)):
        assert chosen == picked_then_chosen(row, names, profile, top)
        assert [repr(c.points) for c in chosen] == [
            repr(c.points) for c in picked_then_chosen(row, names, profile, top)
        ]
        if k < 100:  # finite and untied: the whole row's top contributions
            whole = dict(zip([*names, "base"], row.tolist()))
            assert chosen == top_contributions(whole, profile, top=top)
    assert rows[120:130] == [()] * 10
    for start in (0, 98, 105, 115, 200):  # a few rows are ordered one by one: the same
        few = top_contributions_many(
            table[start : start + 7], names, profiles[start : start + 7], top=top
        )
        assert few == rows[start : start + 7]


def test_explain_takes_contributions_already_chosen():
    profile = {"role": "physician", "ee": 33}
    care = {"role": -2.0, "ee": -1.0, "base": -1.2}
    runner = {"role": -2.5, "base": -0.7}
    common = dict(
        recommended="coaching",
        runner_up="peer_group",
        effect=-4.2,
        lower=-7.0,
        upper=-1.4,
        runner_up_effect=-1.0,
        profile=profile,
    )
    from_mappings = explain(versus_usual_care=care, versus_runner_up=runner, **common)
    names = ["role", "ee"]
    chosen = top_contributions_many(
        [[care["role"], care["ee"], care["base"]], [runner["role"], 0.0, runner["base"]]],
        names,
        [profile, profile],
    )
    from_chosen = explain(versus_usual_care=chosen[0], versus_runner_up=chosen[1], **common)
    assert from_chosen == from_mappings


def test_top_contributions_many_refuses_a_table_without_base():
    with pytest.raises(ValueError, match="then base"):
        top_contributions_many([[1.0, 2.0]], ["a", "b"], [{}])


def test_explaining_after_predicting_reuses_the_binning_only_of_equal_values():
    from recommender.model import RecommendationModel
    from recommender.uplift._synthetic import make_uplift_cohort
    from recommender.uplift import UpliftModel

    X, t, y, p, _ = make_uplift_cohort(600, arms=("none", "coaching", "peer_group"), seed=3)
    model = RecommendationModel(
        outcome_models={"ee": UpliftModel(learner="t").fit(X, t, y, propensity=p)},
        features=X,
        catalog_version="t",
    )
    M = model.encode(X.iloc[:50])
    fresh = model.predict(M.copy()).effect
    assert np.array_equal(model.predict(M).effect, fresh)
    needs = {"coaching": list(range(50))}
    expected = model.explain(M.copy(), needs)["coaching"]
    model.predict(M)
    assert np.array_equal(model.explain(M, needs)["coaching"], expected)  # binning reused
    changed = M.copy()
    changed[:, :] = M[::-1]  # other rows, in place of the binned ones
    model.predict(M)
    M[:] = changed
    assert np.array_equal(model.predict(M).effect, model.predict(M.copy()).effect)
    assert np.array_equal(model.predict(M).effect, fresh[::-1])


def plain_probability_best(effects, sd):
    # recommender.policy._thompson._probability_best as written before it reused its
    # arrays: the reference its in-place arithmetic must equal to the bit.
    from scipy.special import ndtr

    from recommender.policy._thompson import _CUTS, _NODES, _ROOT_TWO_PI, _WEIGHTS

    n, k = effects.shape
    point = sd <= 0
    continuous = ~point
    lowest_point = np.where(point, effects, np.inf).min(axis=1)
    low = np.where(continuous, effects + sd * _CUTS[0], np.inf).min(axis=1)
    high = np.minimum(
        np.where(continuous, effects + sd * _CUTS[-1], np.inf).min(axis=1), lowest_point
    )
    low = np.where(np.isfinite(low), low, lowest_point)
    high = np.maximum(high, low)
    cuts = np.concatenate(
        [(effects[:, :, None] + sd[:, :, None] * _CUTS).reshape(n, -1), lowest_point[:, None]],
        axis=1,
    )
    cuts = np.sort(np.clip(cuts, low[:, None], high[:, None]), axis=1)
    left, half = cuts[:, :-1, None], (cuts[:, 1:, None] - cuts[:, :-1, None]) / 2.0
    x = (left + half * (_NODES + 1.0)).reshape(n, -1)
    weight = (half * _WEIGHTS).reshape(n, -1)
    scale = np.where(continuous, sd, 1.0)[:, :, None]
    standard = (x[:, None, :] - effects[:, :, None]) / scale
    density = np.exp(-0.5 * standard * standard) / (_ROOT_TWO_PI * scale)
    above = ndtr(-standard)
    if point.any():
        density[point] = 0.0
        above[point] = 1.0
    others = np.ones_like(above)
    for j in range(1, k):
        others[:, j] = others[:, j - 1] * above[:, j - 1]
    after = np.ones((n, above.shape[2]))
    for j in range(k - 2, -1, -1):
        after = after * above[:, j + 1]
        others[:, j] *= after
    wins = (density * others * weight[:, None, :]).sum(axis=2)
    has_point = np.isfinite(lowest_point)
    if has_point.any():
        first = np.argmax(point & (effects == lowest_point[:, None]), axis=1)
        at_point = (lowest_point[:, None] - effects) / scale[:, :, 0]
        all_above = np.where(continuous, ndtr(-at_point), 1.0).prod(axis=1)
        rows = np.flatnonzero(has_point)
        wins[rows, first[rows]] = all_above[rows]
    return wins / wins.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("arms", [2, 3, 6])
def test_thompson_probabilities_reuse_their_arrays_without_changing_a_bit(arms):
    from recommender.policy._thompson import _probability_best

    rng = np.random.default_rng(arms)
    effects = rng.normal(-1.0, 2.0, size=(300, arms))
    sd = rng.uniform(0.01, 3.0, size=(300, arms)) * rng.choice([1.0, 1e-3, 1e3], size=(300, 1))
    care = rng.random(300) < 0.5  # usual care: a point at zero, sometimes tied with an arm
    effects[care, -1], sd[care, -1] = 0.0, 0.0
    effects[care & (rng.random(300) < 0.2), 0] = 0.0
    assert np.array_equal(_probability_best(effects, sd), plain_probability_best(effects, sd))
