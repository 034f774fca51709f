"""The promotion gate's statistics (no MLflow needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.errors import InputError
from recommender.registry import estimate, gate_decision, policy_value_scores


def test_first_version_passes():
    decision = gate_decision(np.random.default_rng(0).normal(1, 5, 500))
    assert decision.passed and decision.champion is None and "first" in decision.reason


def test_same_policy_passes_with_zero_difference():
    values = np.random.default_rng(1).normal(2, 5, 800)
    decision = gate_decision(values, values.copy(), champion_version="4")
    assert decision.passed
    assert decision.difference.estimate == 0 and decision.difference.upper == 0


def test_clearly_worse_challenger_fails_and_reason_says_why():
    rng = np.random.default_rng(2)
    champion = rng.normal(3, 5, 2000)
    challenger = champion - 1.0 + rng.normal(0, 1, 2000)
    decision = gate_decision(challenger, champion, alpha=0.1, champion_version="7")
    assert not decision.passed
    assert decision.difference.upper < 0
    assert "worse than champion version 7" in decision.reason


def test_slightly_worse_within_the_interval_passes():
    rng = np.random.default_rng(3)
    champion = rng.normal(3, 5, 300)
    noise = rng.normal(0, 3, 300)
    challenger = champion - 0.05 + (noise - noise.mean())  # mean difference exactly -0.05
    decision = gate_decision(challenger, champion, alpha=0.1)
    assert decision.difference.estimate < 0 < decision.difference.upper
    assert decision.passed


def test_policy_value_is_points_avoided_versus_usual_care():
    scores = pd.DataFrame({"none": [2.0, 2.0], "a": [-1.0, 3.0], "b": [0.0, 0.0]})
    np.testing.assert_allclose(policy_value_scores(scores, ["a", "b"]), [3.0, 2.0])
    np.testing.assert_allclose(policy_value_scores(scores, ["none", "none"]), [0.0, 0.0])
    # For personal accomplishment higher is better, so gains flip sign.
    np.testing.assert_allclose(
        policy_value_scores(scores, ["a", "b"], lower_is_better=False), [-3.0, -2.0]
    )


def test_unknown_arm_and_mismatched_rows_are_refused():
    scores = pd.DataFrame({"none": [1.0, 2.0], "a": [0.0, 1.0]})
    with pytest.raises(InputError, match="yoga"):
        policy_value_scores(scores, ["a", "yoga"])
    with pytest.raises(InputError, match="same rows"):
        gate_decision([1.0, 2.0, 3.0], [1.0, 2.0])


def test_interval_has_the_normal_width():
    values = np.random.default_rng(4).normal(0, 2, 10_000)
    est = estimate(values, alpha=0.05)
    half = 1.959964 * values.std(ddof=1) / np.sqrt(len(values))
    assert est.upper - est.estimate == pytest.approx(half, rel=1e-5)


@pytest.mark.parametrize("alpha", [0.1, 0.05])
def test_gate_values_a_policy_exactly_as_the_evaluation_does(alpha):
    # The card shows the evaluation's policy value; the gate must decide on that same figure.
    from recommender.evaluation import policy_value

    rng = np.random.default_rng(5)
    arms = ["none", "coaching", "mindfulness", "peer_group"]
    scores = pd.DataFrame(rng.normal(0, 4, (400, len(arms))), columns=arms)
    recommended = rng.choice(arms, 400)
    challenger = gate_decision(policy_value_scores(scores, recommended), alpha=alpha).challenger
    evaluation = policy_value(scores, recommended, alpha=alpha)
    assert (challenger.estimate, challenger.lower, challenger.upper, challenger.n) == tuple(
        evaluation.to_dict()[k] for k in ("estimate", "lower", "upper", "n")
    )


def test_gate_refuses_an_alpha_that_is_no_interval():
    with pytest.raises(InputError, match="alpha"):
        gate_decision([1.0, 2.0, 3.0], alpha=1.5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("side", ["challenger", "champion"])
def test_non_finite_scores_are_refused_not_promoted(bad, side):
    # A NaN interval compares False with 0, so "upper < 0" never failed the challenger.
    rng = np.random.default_rng(5)
    champion = rng.normal(3, 1, 200)
    challenger = champion - 2.0  # clearly worse: must never pass
    if side == "challenger":
        challenger[17] = bad
    else:
        champion[17] = bad
    with pytest.raises(InputError, match=rf"{side}'s policy values: 1 of 200 .*not finite.*17"):
        gate_decision(challenger, champion, champion_version="3")


def test_a_first_version_with_a_nan_score_is_refused():
    with pytest.raises(InputError, match="not finite"):
        gate_decision([1.0, np.nan, 2.0])
    with pytest.raises(InputError, match="not finite"):
        estimate([1.0, np.nan, 2.0])
