"""Ranking by expected EE change; usual care at zero wins ties; overlap makes a ranking meaningless."""

import pytest

from recommender.policy import interval_overlap, rank_arms


def test_best_first_with_usual_care_at_zero():
    ranking = rank_arms(
        {
            "coaching": (-1, -2, 0, 0, 0),
            "mindfulness": (-3, -4, -2, 0, 0),
            "balint_group": (0.5, -0.5, 1.5, 0, 0),
        }
    )
    assert [a.arm for a in ranking.arms] == ["mindfulness", "coaching", "none", "balint_group"]
    assert [a.rank for a in ranking.arms] == [1, 2, 3, 4]
    assert ranking.recommended == "mindfulness" and ranking.runner_up == "coaching"


def test_usual_care_wins_a_tie_and_catalog_order_breaks_other_ties():
    assert rank_arms({"coaching": (0.0, -1, 1, 0, 0)}).recommended == "none"
    tied = rank_arms({"coaching": (-1, -2, 0, 0, 0), "peer_group": (-1, -2, 0, 0, 0)})
    assert [a.arm for a in tied.arms][:2] == ["coaching", "peer_group"]


def test_overlapping_intervals_make_the_ranking_not_meaningful():
    clear = rank_arms({"coaching": (-6, -8, -4, 0, 0), "peer_group": (-1, -3, 1, 0, 0)})
    assert clear.meaningful and clear.overlap == 0.0
    murky = rank_arms({"coaching": (-2.0, -5, 1, 0, 0), "peer_group": (-1.9, -4.8, 1, 0, 0)})
    assert not murky.meaningful
    assert "not meaningful" in murky.note and "coaching" in murky.note
    assert murky.overlap > 0.9


def test_threshold_is_a_setting():
    effects = {"coaching": (-3, -5, -1, 0, 0), "peer_group": (-1, -2, 0, 0, 0)}  # overlap 0.5
    assert rank_arms(effects, max_overlap=0.5).meaningful
    assert not rank_arms(effects, max_overlap=0.4).meaningful


def test_a_best_arm_whose_interval_reaches_zero_is_called_unproven():
    ranking = rank_arms({"coaching": (-1, -3, 1, 0, 0)})
    assert ranking.recommended == "coaching"
    assert "benefit over usual care is not established" in ranking.note


def test_only_usual_care():
    ranking = rank_arms({})
    assert ranking.recommended == "none" and ranking.runner_up is None
    assert ranking.meaningful is None  # no order was made to judge


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ((-4, -2), (-3, 1), 0.5),
        ((-4, -2), (-1, 1), 0.0),
        ((-4, -2), (-4, -2), 1.0),
        ((-4, 4), (-1, 1), 1.0),  # the narrower interval lies inside the wider one
        ((-1, 1), (0, 0), 1.0),  # usual care inside an interval
        ((-3, -1), (0, 0), 0.0),
    ],
)
def test_interval_overlap(a, b, expected):
    assert interval_overlap(*a, *b) == pytest.approx(expected)
    assert interval_overlap(*b, *a) == pytest.approx(expected)


def test_one_persons_ranking_follows_the_one_ordering_rule():
    # rank_arms sorts one row in Python; arm_order (numpy) is the rule. Ties (rounded effects,
    # usual care's zero, -0.0) and non-finite effects must come out in the same order.
    import numpy as np

    from recommender.policy import arm_order

    rng = np.random.default_rng(0)
    arms = [f"arm_{j}" for j in range(6)]
    for _ in range(500):
        k = int(rng.integers(1, 7))
        effects = rng.choice([-1.5, -0.5, -0.0, 0.0, 0.5, 1.0], size=k)
        if rng.random() < 0.2:
            effects = rng.normal(size=k).round(1)
        if rng.random() < 0.1:
            effects[int(rng.integers(k))] = rng.choice([np.nan, np.inf, -np.inf])
        names = ["none", *arms[:k]]
        expected = [names[j] for j in arm_order(effects)[0]]
        ranking = rank_arms({arm: (e, e - 1, e + 1, 0, 0) for arm, e in zip(arms, effects)})
        assert [a.arm for a in ranking.arms] == expected
