"""One small interface over our learner and the anchors, so the harness treats them alike.

Every method has ``fit(rows, treatment, y, *, design_shares, propensity)``, ``effect(rows)``
(a DataFrame with one column per non-control arm, outcome under the arm minus under control),
``interval(rows, alpha)`` (``None`` when the method gives no per-person intervals) and
``explain_one(rows)`` (what one recommendation costs: ours computes the effect and the
contributions behind it; the anchors have no explanation, so they compute the effect only).

Settings are the anchors' defaults except the nuisance models, which are LightGBM with its
defaults (``N_JOBS`` threads) wherever an anchor takes them, and the propensity, which is:

``"design"``
    the trial's arm shares, constant per arm (what a randomized cohort should use);
``"lightgbm"``
    a LightGBM classifier's estimate (what the anchors do by default with LightGBM nuisances;
    issue 3 reports this breaks their DR learners on randomized cohorts).

Heavy imports (EconML, CausalML) happen inside ``fit`` so importing this module is cheap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from bench._data import CONTROL, Rows

__all__ = [
    "N_JOBS",
    "FixedPropensity",
    "Ours",
    "LightGBMTLearner",
    "EconMLDRLearner",
    "EconMLCausalForest",
    "CausalMLXLearner",
    "CausalMLDRLearner",
]

# One thread for every method. The 2 cores are shared with other agents, and under that
# contention LightGBM's OpenMP threads spin-wait: 100 rounds on 16,000 rows took 0.3 s with one
# thread and 20 s with two (and 40 times the CPU time), which would time the load, not the method.
N_JOBS = 1
SEED = 0


def _lgbm_regressor():
    from lightgbm import LGBMRegressor

    return LGBMRegressor(n_jobs=N_JOBS, random_state=SEED, verbose=-1)


def _lgbm_classifier():
    from lightgbm import LGBMClassifier

    return LGBMClassifier(n_jobs=N_JOBS, random_state=SEED, verbose=-1)


class FixedPropensity(ClassifierMixin, BaseEstimator):
    """A "classifier" that returns the trial's arm shares for everyone.

    Lets the anchors, which take a propensity *model*, use the known design of a randomized
    cohort. ``shares`` are in the order of the classes the anchor passes (its categories).
    """

    def __init__(self, *, shares=()):
        self.shares = shares

    def fit(self, X, y, **fit_params):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        shares = np.asarray(self.shares, dtype=float)
        return np.tile(shares / shares.sum(), (len(X), 1))

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class _Method:
    name = "method"
    gives_intervals = False
    explains = False

    def interval(self, rows: Rows, alpha: float):
        return None

    def explain_one(self, rows: Rows):
        return self.effect(rows)

    def _frame(self, values, rows: Rows) -> pd.DataFrame:
        return pd.DataFrame(
            np.asarray(values, float), index=rows.features.index, columns=self.arms_
        )


class Ours(_Method):
    """``recommender.uplift.UpliftModel`` given the logged propensities (or none)."""

    gives_intervals = True
    explains = True

    def __init__(self, *, learner="auto", use_propensity=True, name=None):
        self.learner = learner
        self.use_propensity = use_propensity
        self.name = name or f"ours ({learner})"

    def fit(self, rows, treatment, y, *, design_shares=None, propensity=None):
        from recommender.uplift import UpliftModel

        self.model_ = UpliftModel(
            learner=self.learner, control=CONTROL, random_state=SEED, n_jobs=N_JOBS
        )
        self.model_.fit(
            rows.features,
            treatment,
            y,
            propensity=propensity if self.use_propensity else None,
        )
        self.arms_ = list(self.model_.arms_)
        return self

    def effect(self, rows):
        return self.model_.predict_effect(rows.features)[self.arms_]

    def interval(self, rows, alpha):
        lower, upper = self.model_.predict_interval(rows.features, alpha=alpha)
        return lower[self.arms_], upper[self.arms_]

    def explain_one(self, rows):
        effect = self.model_.predict_effect(rows.features)
        best = effect.iloc[0].idxmin()
        return effect, self.model_.contributions(rows.features, best, versus=CONTROL)


class LightGBMTLearner(_Method):
    """The plain baseline: one raw ``lightgbm.train`` per arm, effect = difference of means."""

    name = "LightGBM T-learner (raw)"

    def fit(self, rows, treatment, y, *, design_shares=None, propensity=None):
        import lightgbm as lgb

        treatment = np.asarray(treatment)
        params = {"objective": "regression", "verbosity": -1, "num_threads": N_JOBS, "seed": SEED}
        self.arms_ = sorted(a for a in np.unique(treatment) if a != CONTROL)
        self.boosters_ = {}
        for arm in [CONTROL, *self.arms_]:
            mask = treatment == arm
            data = lgb.Dataset(rows.features[mask], label=np.asarray(y)[mask])
            self.boosters_[arm] = lgb.train(params, data, num_boost_round=100)
        return self

    def effect(self, rows):
        control = self.boosters_[CONTROL].predict(rows.features)
        return pd.DataFrame(
            {arm: self.boosters_[arm].predict(rows.features) - control for arm in self.arms_},
            index=rows.features.index,
        )


def _propensity_model(kind: str, categories: list[str], design_shares):
    if kind == "design":
        return FixedPropensity(shares=[design_shares[c] for c in categories])
    if kind == "lightgbm":
        return _lgbm_classifier()
    raise ValueError(f"propensity must be 'design' or 'lightgbm', got {kind!r}")


class EconMLDRLearner(_Method):
    """``econml.dr.DRLearner``, multi-arm categorical treatment, LightGBM final model.

    The final model is LightGBM (like our DR learner) rather than EconML's default linear one,
    so there are no per-person intervals; ``cv`` is EconML's default (2).
    """

    def __init__(self, *, propensity="design"):
        self.propensity = propensity
        self.name = f"EconML DRLearner ({propensity} propensity)"

    def fit(self, rows, treatment, y, *, design_shares=None, propensity=None):
        from econml.dr import DRLearner

        treatment = np.asarray(treatment)
        self.arms_ = sorted(a for a in np.unique(treatment) if a != CONTROL)
        categories = [CONTROL, *self.arms_]
        self.model_ = DRLearner(
            model_propensity=_propensity_model(self.propensity, categories, design_shares),
            model_regression=_lgbm_regressor(),
            model_final=_lgbm_regressor(),
            categories=categories,
            random_state=SEED,
        )
        self.model_.fit(np.asarray(y, float), treatment, X=rows.numeric.to_numpy())
        return self

    def effect(self, rows):
        values = self.model_.const_marginal_effect(rows.numeric.to_numpy())
        return self._frame(values.reshape(len(rows), -1), rows)


class EconMLCausalForest(_Method):
    """``econml.dml.CausalForestDML`` with ``discrete_treatment=True`` over all arms.

    Defaults (100 trees, honest, ``cv=2``) with LightGBM ``model_y`` and ``model_t``;
    intervals from its own inference (bootstrap of little bags).
    """

    gives_intervals = True

    def __init__(self, *, propensity="design"):
        self.propensity = propensity
        self.name = f"EconML CausalForestDML ({propensity} propensity)"

    def fit(self, rows, treatment, y, *, design_shares=None, propensity=None):
        from econml.dml import CausalForestDML

        treatment = np.asarray(treatment)
        self.arms_ = sorted(a for a in np.unique(treatment) if a != CONTROL)
        categories = [CONTROL, *self.arms_]
        self.model_ = CausalForestDML(
            model_y=_lgbm_regressor(),
            model_t=_propensity_model(self.propensity, categories, design_shares),
            discrete_treatment=True,
            categories=categories,
            n_jobs=N_JOBS,
            random_state=SEED,
        )
        self.model_.fit(np.asarray(y, float), treatment, X=rows.numeric.to_numpy())
        return self

    def effect(self, rows):
        values = self.model_.const_marginal_effect(rows.numeric.to_numpy())
        return self._frame(values.reshape(len(rows), -1), rows)

    def interval(self, rows, alpha):
        lower, upper = self.model_.const_marginal_effect_interval(
            rows.numeric.to_numpy(), alpha=alpha
        )
        return self._frame(lower.reshape(len(rows), -1), rows), self._frame(
            upper.reshape(len(rows), -1), rows
        )


class _CausalML(_Method):
    """CausalML meta-learners take propensities as data: {arm: P(arm | arm or control, x)}."""

    def __init__(self, *, propensity="design"):
        self.propensity = propensity

    def _pairwise(self, probabilities: np.ndarray) -> dict[str, np.ndarray]:
        # Columns of ``probabilities`` follow self.classes_ = [control, *arms].
        control = probabilities[:, 0]
        pairwise = {}
        for i, arm in enumerate(self.arms_):
            share = probabilities[:, i + 1] / (probabilities[:, i + 1] + control)
            pairwise[arm] = np.clip(share, 1e-3, 1 - 1e-3)
        return pairwise

    def _fit_propensity(self, rows, treatment, design_shares):
        treatment = np.asarray(treatment)
        self.arms_ = sorted(a for a in np.unique(treatment) if a != CONTROL)
        self.classes_ = [CONTROL, *self.arms_]
        if self.propensity == "design":
            shares = np.array([design_shares[c] for c in self.classes_])
            self.design_ = shares
            return self._pairwise(np.tile(shares, (len(rows), 1)))
        if self.propensity == "lightgbm":
            from sklearn.model_selection import cross_val_predict

            labels = pd.Categorical(treatment, categories=self.classes_).codes
            # Out-of-fold for the training rows, as a cross-fitted nuisance should be; 2 folds
            # like EconML's default cv.
            train_p = cross_val_predict(
                _lgbm_classifier(), rows.numeric, labels, cv=2, method="predict_proba"
            )
            self.propensity_model_ = _lgbm_classifier().fit(rows.numeric, labels)
            return self._pairwise(train_p)
        raise ValueError(f"propensity must be 'design' or 'lightgbm', got {self.propensity!r}")

    def _predict_propensity(self, rows):
        if self.propensity == "design":
            return self._pairwise(np.tile(self.design_, (len(rows), 1)))
        return self._pairwise(self.propensity_model_.predict_proba(rows.numeric))


class CausalMLXLearner(_CausalML):
    """``causalml.inference.meta.BaseXRegressor`` with LightGBM for all four models."""

    def __init__(self, *, propensity="design"):
        super().__init__(propensity=propensity)
        self.name = f"CausalML X-learner ({propensity} propensity)"

    def fit(self, rows, treatment, y, *, design_shares=None, propensity=None):
        from causalml.inference.meta import BaseXRegressor

        p = self._fit_propensity(rows, treatment, design_shares)
        self.model_ = BaseXRegressor(learner=_lgbm_regressor(), control_name=CONTROL)
        self.model_.fit(rows.numeric, treatment=np.asarray(treatment), y=np.asarray(y, float), p=p)
        return self

    def effect(self, rows):
        p = self._predict_propensity(rows)
        return self._frame(self.model_.predict(rows.numeric, p=p, verbose=False), rows)


class CausalMLDRLearner(_CausalML):
    """``causalml.inference.meta.BaseDRRegressor`` with LightGBM outcome and effect models."""

    def __init__(self, *, propensity="design"):
        super().__init__(propensity=propensity)
        self.name = f"CausalML DR-learner ({propensity} propensity)"

    def fit(self, rows, treatment, y, *, design_shares=None, propensity=None):
        from causalml.inference.meta import BaseDRRegressor

        p = self._fit_propensity(rows, treatment, design_shares)
        self.model_ = BaseDRRegressor(learner=_lgbm_regressor(), control_name=CONTROL)
        self.model_.fit(
            rows.numeric, treatment=np.asarray(treatment), y=np.asarray(y, float), p=p, seed=SEED
        )
        return self

    def effect(self, rows):
        return self._frame(self.model_.predict(rows.numeric, verbose=False), rows)
