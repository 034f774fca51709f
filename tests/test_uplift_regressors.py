"""The base regressors' edges: settings LightGBM fixes at binning, row order, old pickles."""

import pickle

import numpy as np
import pytest

from recommender.uplift import GBMSpec, RidgeSpec, UpliftModel
from recommender.uplift._linear import RidgeModel
from recommender.uplift._regressors import TrainingMatrix
from recommender.uplift._synthetic import make_uplift_cohort


@pytest.fixture(scope="module")
def cohort():
    return make_uplift_cohort(1200, arms=("none", "coaching"), seed=8)


def test_binning_settings_in_extra_reach_the_shared_binned_matrix(cohort):
    X, t, y, p, _ = cohort
    spec = GBMSpec(num_leaves=7, extra=[("min_data_in_bin", 5), ("max_bin_by_feature", [31] * 6)])
    assert spec.extra == (("min_data_in_bin", 5), ("max_bin_by_feature", (31,) * 6))
    hash(spec)  # specs key the T-learner's pairs
    model = UpliftModel(
        learner="auto", n_folds=3, outcome_candidates=(spec,), final_candidates=(spec,)
    ).fit(X, t, y, propensity=p)
    assert np.isfinite(model.predict_effect(X.head(50)).to_numpy()).all()


def test_rows_out_of_order_are_refused_rather_than_mislabelled():
    matrix = TrainingMatrix(np.arange(20.0).reshape(10, 2), [])
    params = GBMSpec().dataset_params()
    matrix.lightgbm(np.array([1, 4, 7]), np.zeros(3), None, params)
    with pytest.raises(ValueError, match="increasing"):
        matrix.lightgbm(np.array([7, 4, 1]), np.zeros(3), None, params)


def test_a_ridge_model_pickled_before_the_shared_design_still_predicts(cohort):
    X, t, y, p, _ = cohort
    M = np.column_stack([X["age"], X["role"].cat.codes, X["ee"]]).astype(float)
    model = RidgeModel.fit(M, y, None, [1], alpha=RidgeSpec().alpha)
    expected = model.predict(M[:20])
    # the layout of commit 03c9b4d and before: the design's parts on the model itself
    old = dict(vars(model))
    design = old.pop("design")
    old.update(
        {
            key: getattr(design, key)
            for key in ("p", "categorical", "levels", "means", "scales", "groups")
        }
    )
    stale = RidgeModel.__new__(RidgeModel)
    stale.__dict__.update(old)
    revived = pickle.loads(pickle.dumps(stale))
    np.testing.assert_allclose(revived.predict(M[:20]), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(revived.contrib(M[:20]).sum(axis=1), expected, atol=1e-9)
