"""Differential test: our DR pseudo-outcomes and average effects against EconML's DRLearner.

Both get the SAME nuisance models (per-arm ridge outcome models, the design's arm shares as
propensities) and the SAME folds, so any difference comes from how the doubly robust
estimate is assembled: the AIPW formula, the cross-fitting, the final stage.
"""

import os

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from recommender.uplift import RidgeSpec, UpliftModel
from recommender.uplift._checks import check_training_inputs
from recommender.uplift._encoding import FeatureEncoder
from recommender.uplift._nuisance import fit_nuisance, make_folds
from recommender.uplift._linear import RidgeModel
from recommender.uplift._synthetic import make_uplift_cohort

if os.environ.get("CI"):  # `make test` installs the bench extra: a skip would hide its absence
    import econml.dr as econml_dr
else:
    econml_dr = pytest.importorskip("econml.dr")

ARMS = ("none", "coaching", "mindfulness", "peer_group")
N_FOLDS = 3
SEED = 5


class PerArmRidge(BaseEstimator, RegressorMixin):
    """EconML's regression nuisance sees [X, one-hot T]; route rows to one ridge per arm."""

    def __init__(self, n_arms=2, categorical=(), alpha=1.0):
        self.n_arms = n_arms
        self.categorical = categorical
        self.alpha = alpha

    def _split(self, Z):
        k = self.n_arms - 1
        onehot = Z[:, -k:]
        arm = np.where(onehot.any(axis=1), onehot.argmax(axis=1) + 1, 0)
        return Z[:, :-k], arm

    def fit(self, Z, y):
        X, arm = self._split(Z)
        self.models_ = {
            a: RidgeModel.fit(X[arm == a], y[arm == a], None, list(self.categorical), self.alpha)
            for a in range(self.n_arms)
        }
        return self

    def predict(self, Z):
        X, arm = self._split(Z)
        out = np.empty(len(X))
        for a, model in self.models_.items():
            if (arm == a).any():
                out[arm == a] = model.predict(X[arm == a])
        return out


class SameRidge(BaseEstimator, RegressorMixin):
    """Our ridge (one-hot categories) as EconML's final model, so the designs are identical."""

    def __init__(self, categorical=(), alpha=1e-9):
        self.categorical = categorical
        self.alpha = alpha

    def fit(self, X, y):
        self.model_ = RidgeModel.fit(X, y, None, list(self.categorical), self.alpha)
        return self

    def predict(self, X):
        return self.model_.predict(X)


class DesignShares(BaseEstimator, ClassifierMixin):
    """A 'classifier' that returns the randomization's arm shares for every row."""

    def __init__(self, shares=None):
        self.shares = shares

    def fit(self, X, y):
        self.classes_ = np.arange(len(self.shares))
        return self

    def predict_proba(self, X):
        return np.tile(np.asarray(self.shares, float), (len(X), 1))

    def predict(self, X):  # EconML scores the nuisance; the label is the most likely arm
        return np.full(len(X), int(np.argmax(self.shares)))


@pytest.fixture(scope="module")
def setup():
    X, t, y, _, _ = make_uplift_cohort(1800, arms=ARMS, seed=31)
    encoder = FeatureEncoder().fit(X)
    M = encoder.transform(X)
    data = check_training_inputs(X, t, y, None, control="none", min_arm_rows=30)
    folds = make_folds(data.codes, N_FOLDS, SEED)
    shares = np.bincount(data.codes) / len(data.codes)
    econml = econml_dr.DRLearner(
        model_propensity=DesignShares(shares=shares),
        model_regression=PerArmRidge(
            n_arms=len(ARMS), categorical=tuple(encoder.categorical_index)
        ),
        model_final=SameRidge(categorical=tuple(encoder.categorical_index)),
        cv=[(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(N_FOLDS)],
        categories=list(data.arms),
        min_propensity=1e-6,
        random_state=SEED,
    )
    econml.fit(data.y, np.asarray(data.arms, dtype=object)[data.codes], X=M, cache_values=True)
    return X, t, y, M, data, folds, encoder, econml


def test_pseudo_outcomes_match_econml_exactly(setup):
    X, t, y, M, data, folds, encoder, econml = setup
    ours = fit_nuisance(
        M,
        data.codes,
        data.y,
        data.arms,
        categorical=encoder.categorical_index,
        feature_names=encoder.feature_names,
        propensity=None,
        design="randomized",
        clip=(0.01, 1.0),
        n_folds=N_FOLDS,
        seed=SEED,
        n_jobs=1,
        candidates=(RidgeSpec(alpha=1.0),),
        refit_outcomes=False,
    )
    np.testing.assert_array_equal(ours.folds, folds)
    y_pred = econml._cached_values.nuisances[0]
    theirs = y_pred[:, 1:] - y_pred[:, [0]]
    np.testing.assert_allclose(ours.pseudo_effects(), theirs, rtol=0, atol=1e-9)


def test_average_effects_match_econml(setup):
    X, t, y, M, data, folds, encoder, econml = setup
    model = UpliftModel(
        learner="dr",
        n_folds=N_FOLDS,
        random_state=SEED,
        design="randomized",
        outcome_candidates=(RidgeSpec(alpha=1.0),),
        final_candidates=(RidgeSpec(alpha=1e-9),),
        heterogeneity_z=None,  # the same final stage on every arm, as EconML's
        calibrate_intervals=False,
    ).fit(X, t, y)
    ours = model.predict_effect(X).mean().to_numpy()
    # the average of EconML's per-person effects (its ate() trips over object arm labels);
    # a linear final stage with an intercept averages to the mean pseudo-outcome
    theirs = econml.const_marginal_effect(M).mean(axis=0)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    # and the same final regression on identical pseudo-outcomes gives identical effects
    np.testing.assert_allclose(
        model.predict_effect(X).to_numpy(), econml.const_marginal_effect(M), rtol=0, atol=1e-4
    )
