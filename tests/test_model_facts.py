"""What a served model says of itself: its training data, and the arms it gives one effect for
everyone (issue 9, item 5), read from a really fitted learner's model-selection table."""

import pytest

from recommender.model import data_source, model_facts, one_effect_arms
from recommender.uplift import UpliftModel


@pytest.fixture(scope="module")
def cohort():
    from recommender.uplift._synthetic import make_uplift_cohort

    X, t, y, p, _ = make_uplift_cohort(1200, arms=("none", "a", "b"), seed=3)
    return X, t, y, p


@pytest.mark.parametrize("z, expected", [(1e9, ["a", "b"]), (None, [])])
def test_one_effect_arms_follow_the_heterogeneity_gate(cohort, z, expected):
    X, t, y, p = cohort
    # z = 1e9: no personalised model can clear the gate, so every arm gets one effect;
    # z = None: the gate is off and no constant candidate is fitted at all.
    model = UpliftModel(learner="dr", n_folds=2, heterogeneity_z=z).fit(X, t, y, propensity=p)
    assert one_effect_arms(model) == expected


def test_older_models_get_sensible_defaults():
    class Old:
        metadata = {"data": "file cohort.csv"}

    assert model_facts(Old()) == {
        "data_source": "program",
        "data": "file cohort.csv",
        "one_effect_arms": [],
    }
    assert data_source("simulated: scenario default") == "simulated"
    assert model_facts(object())["data_source"] == "not recorded"
