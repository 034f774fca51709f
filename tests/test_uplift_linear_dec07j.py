"""The linear regressors moved to ``recommender.uplift._linear``; a model pickled while they
lived in ``_regressors`` (every registered model until then) still loads and predicts."""

import pickle

import numpy as np

from recommender.uplift._linear import LinearDesign, LogLinearModel, RidgeModel


def _matrix():
    rng = np.random.default_rng(0)
    M = np.column_stack([rng.normal(size=200), rng.integers(0, 3, 200), rng.normal(size=200)])
    return M, 5.0 + M[:, 0] + rng.normal(0, 0.1, 200)


def test_linear_models_pickled_under_their_old_module_still_predict():
    M, y = _matrix()
    for model in (
        RidgeModel.fit(M, y, None, [1], alpha=1.0),
        LogLinearModel.fit(M, y, None, [1], alpha=1e-3),
    ):
        # protocol 2 names a class as "module\nname\n" text, so the old module can be written in
        old = pickle.dumps(model, protocol=2).replace(
            b"recommender.uplift._linear\n", b"recommender.uplift._regressors\n"
        )
        assert b"recommender.uplift._linear\n" not in old
        revived = pickle.loads(old)
        assert type(revived) is type(model) and type(revived.design) is LinearDesign
        np.testing.assert_array_equal(revived.predict(M), model.predict(M))
        np.testing.assert_array_equal(revived.contrib(M), model.contrib(M))
