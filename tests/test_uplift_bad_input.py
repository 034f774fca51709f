"""Bad input: each case raises an InputError (or warns) naming the cause; nothing is dropped."""

import numpy as np
import pandas as pd
import pytest

from recommender.errors import InputError
from recommender.uplift import UpliftModel, doubly_robust_scores
from recommender.uplift._synthetic import make_uplift_cohort


@pytest.fixture(scope="module")
def cohort():
    return make_uplift_cohort(600, arms=("none", "coaching", "mindfulness"), seed=2)


def fit(X, t, y, **kwargs):
    return UpliftModel(learner="t", n_folds=3).fit(X, t, y, **kwargs)


def test_one_arm_only(cohort):
    X, _, y, _, _ = cohort
    with pytest.raises(InputError, match="only one arm"):
        fit(X, np.full(len(X), "none"), y)


def test_no_control_rows(cohort):
    X, t, y, _, _ = cohort
    relabelled = np.where(t == "none", "coaching", t)
    with pytest.raises(InputError, match="no control rows.*'none'"):
        fit(X, relabelled, y)


def test_arm_too_small_names_arm_count_and_minimum(cohort):
    X, t, y, _, _ = cohort
    t = t.copy()
    t[np.flatnonzero(t == "mindfulness")[12:]] = "coaching"
    with pytest.raises(InputError, match=r"'mindfulness' has 12 rows.*at least 30") as caught:
        fit(X, t, y)
    assert caught.value.problems == [{"arm": "mindfulness", "rows": 12, "minimum": 30}]


def test_missing_outcomes_are_counted_and_located(cohort):
    X, t, y, _, _ = cohort
    y = y.copy()
    y[[4, 9, 10]] = np.nan
    with pytest.raises(InputError, match=r"missing.*3 rows \(first: 4, 9, 10\)"):
        fit(X, t, y)


def test_infinite_outcome(cohort):
    X, t, y, _, _ = cohort
    y = y.copy()
    y[7] = np.inf
    with pytest.raises(InputError, match=r"infinite for 1 rows \(first: 7\)"):
        fit(X, t, y)


@pytest.mark.parametrize("value", [0.0, 1.2, -0.1, np.nan])
def test_propensity_outside_zero_one(cohort, value):
    X, t, y, p, _ = cohort
    p = p.copy()
    p[5] = value
    with pytest.raises(InputError, match=r"propensity must be in \(0, 1\].*first rows 5"):
        fit(X, t, y, propensity=p)
    with pytest.raises(InputError, match=r"propensity must be in \(0, 1\]"):
        doubly_robust_scores(X, t, y, propensity=p)


def test_constant_features_are_named_in_a_warning(cohort):
    X, t, y, _, _ = cohort
    X = X.assign(site=7.0, program=pd.Categorical(["a"] * len(X)))
    with pytest.warns(UserWarning, match=r"constant features.*\['site', 'program'\]"):
        fit(X, t, y)


def test_length_mismatch(cohort):
    X, t, y, _, _ = cohort
    with pytest.raises(InputError, match="different numbers of rows: X 600, treatment 599"):
        fit(X, t[:-1], y)


def test_missing_treatment(cohort):
    X, t, y, _, _ = cohort
    t = t.copy()
    t[3] = None
    with pytest.raises(InputError, match=r"treatment is missing for 1 rows \(first: 3\)"):
        fit(X, t, y)


def test_features_must_be_a_frame(cohort):
    X, t, y, _, _ = cohort
    with pytest.raises(InputError, match="DataFrame"):
        fit(X.to_numpy(), t, y)


def test_predict_columns_must_match_fit(cohort):
    X, t, y, _, _ = cohort
    model = fit(X, t, y)
    with pytest.raises(InputError, match=r"missing \['ee'\], unexpected \['ee_baseline'\]"):
        model.predict_effect(X.rename(columns={"ee": "ee_baseline"}))
    with pytest.raises(InputError, match=r"unexpected \['true_effect_coaching'\]"):
        model.predict_effect(X.assign(true_effect_coaching=0.0))


def test_infinite_feature_is_located(cohort):
    X, t, y, _, _ = cohort
    X = X.copy()
    X.loc[8, "weekly_hours"] = np.inf
    with pytest.raises(InputError, match="row 8 column 'weekly_hours'"):
        fit(X, t, y)


def test_bad_alpha(cohort):
    X, t, y, _, _ = cohort
    with pytest.raises(InputError, match="alpha=1.5"):
        fit(X, t, y).predict_interval(X, alpha=1.5)


def test_unknown_category_at_predict_is_missing_not_an_error(cohort):
    X, t, y, _, _ = cohort
    model = fit(X, t, y)
    odd = X.head(3).copy()
    odd["role"] = pd.Categorical(["chaplain", "nurse", "nurse"])
    effect = model.predict_effect(odd)
    assert np.isfinite(effect.to_numpy()).all()


def test_poor_overlap_warning_names_arm_and_region():
    rng = np.random.default_rng(0)
    n = 1500
    X = pd.DataFrame(
        {"role": pd.Categorical(rng.choice(["nurse", "physician"], n)), "ee": rng.normal(23, 10, n)}
    )
    nurse = (X["role"] == "nurse").to_numpy()
    # nurses almost never get coaching
    t = np.where(rng.random(n) < np.where(nurse, 0.002, 0.5), "coaching", "none")
    t[np.flatnonzero(nurse)[:2]] = "coaching"
    y = rng.normal(size=n)
    with pytest.warns(UserWarning, match=r"poor overlap.*arm 'coaching'.*role=nurse"):
        UpliftModel(learner="t", n_folds=3, min_arm_rows=5).fit(X, t, y)
