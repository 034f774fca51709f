"""evaluate() end to end with the real doubly robust scores and stand-in models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _evaluation_synthetic import synthetic_trial
from recommender.errors import InputError
from recommender.evaluation import evaluate


class KnownEffects:
    """A 'model' that predicts given effects, optionally with a fixed-width interval."""

    def __init__(self, effects: pd.DataFrame, half_width: float | None = None):
        self.effects = effects
        self.half_width = half_width

    def predict_effect(self, X):
        return self.effects.set_axis(X.index)

    def __getattr__(self, name):
        if name == "predict_interval" and self.half_width is not None:

            def predict_interval(X, alpha=0.1):
                effect = self.predict_effect(X)
                return effect - self.half_width, effect + self.half_width

            return predict_interval
        raise AttributeError(name)


@pytest.fixture(scope="module")
def trial():
    data = synthetic_trial(3000, seed=21, slope=3.0)
    data["X"] = pd.DataFrame({"x": data["x"]}, index=[f"p{i}" for i in range(3000)])
    return data


def test_evaluate_fits_dr_scores_on_the_given_data_and_rewards_the_true_ranking(trial):
    model = KnownEffects(trial["truth"], half_width=0.25)
    report = evaluate(
        model,
        trial["X"],
        trial["arm"],
        trial["y"],
        propensity=np.full(3000, 1 / 3),
        oracle=trial["truth"],
        n_folds=3,
    )
    assert report.personalization_adds_value
    assert report.qini.loc["targeted", "lower"] > 0
    assert report.oracle["regret"] == 0.0 and report.oracle["pehe_mean"] == 0.0
    assert report.pehe["coverage"].tolist() == [1.0, 1.0]
    assert (
        report.calibration_slopes.loc["targeted", "lower"]
        < 1
        < report.calibration_slopes.loc["targeted", "upper"]
    )


def test_a_model_without_intervals_gets_no_coverage(trial):
    report = evaluate(
        KnownEffects(trial["truth"]),
        trial["X"],
        trial["arm"],
        trial["y"],
        oracle=trial["truth"],
        n_folds=3,
    )
    assert "coverage" not in report.pehe.columns
    assert "coverage.steady" not in report.metrics()


def test_rows_that_do_not_line_up_are_refused(trial):
    with pytest.raises(InputError, match="y has 2999 rows"):
        evaluate(KnownEffects(trial["truth"]), trial["X"], trial["arm"], trial["y"][1:])


def test_eligible_mask_keeps_masked_arms_out_of_the_learned_policy():
    from recommender.evaluation import evaluate_effects

    trial = synthetic_trial(600, seed=11)
    effects = trial["truth"]
    # "targeted" is the best arm for a quarter of the people; forbid it for the first half.
    eligible = pd.DataFrame(True, index=effects.index, columns=effects.columns)
    eligible.loc[:299, "targeted"] = False
    free = evaluate_effects(effects, trial["scores"], random_state=0)
    masked = evaluate_effects(effects, trial["scores"], eligible=eligible, random_state=0)
    assert free.recommendation_mix["targeted"] > 0.15
    assert masked.recommendation_mix["targeted"] <= 0.5 + 1e-9
    from recommender.evaluation._policy_value import learned_policy

    recommended = learned_policy(effects, eligible=eligible)
    assert not np.any(recommended[:300] == "targeted")
    assert np.any(recommended[300:] == "targeted")


def test_min_cell_suppresses_every_published_cell_below_it():
    from recommender.evaluation import evaluate_effects

    trial = synthetic_trial(600, seed=12)
    rng = np.random.default_rng(3)
    # Cell sizes from about 5 to 60, so many fall between 11 and 19.
    sizes = rng.integers(5, 60, 40)
    labels = np.repeat([f"c{i}" for i in range(len(sizes))], sizes)[:600]
    labels = np.concatenate([labels, np.full(600 - len(labels), "rest")])
    groups = pd.DataFrame({"setting": labels})
    report = evaluate_effects(trial["truth"], trial["scores"], groups=groups, min_cell=20)
    published = report.subgroups[~report.subgroups["suppressed"]]
    assert len(published) > 0 and (published["n"] >= 20).all()
    counts = pd.Series(labels).value_counts()
    assert ((counts >= 11) & (counts < 20)).any()
