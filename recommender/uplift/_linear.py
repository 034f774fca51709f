"""The linear base regressors: ridge on standardized numbers and one-hot categories
(:class:`RidgeSpec`, and :class:`ConstantSpec`, the no-heterogeneity baseline), the log-link
linear model for positive outcomes (:class:`LogLinearSpec`), their fitted models, and the
design they share (:class:`LinearDesign`). Contributions are exact: coefficient times centred
value summed per original feature (ridge), integrated gradients (log-linear).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "RidgeSpec",
    "ConstantSpec",
    "LogLinearSpec",
    "LinearDesign",
    "RidgeModel",
    "LogLinearModel",
]


@dataclass(frozen=True)
class RidgeSpec:
    """Ridge on standardized numbers and one-hot categories; missing numbers get the mean."""

    alpha: float = 1.0

    @property
    def label(self) -> str:
        return f"ridge(alpha={self.alpha})"

    @staticmethod
    def accepts(y: np.ndarray) -> bool:
        return True

    def fit(self, matrix, rows, y, weight, *, seed, n_jobs, rounds=None, valid=None):
        return RidgeModel.fit(matrix.M[rows], y, weight, matrix.categorical, self.alpha), None


@dataclass(frozen=True)
class ConstantSpec(RidgeSpec):
    """One effect for everyone: every slope shrunk to nothing, leaving the weighted mean.

    The no-heterogeneity baseline of model selection: a personalized model must beat it.
    """

    alpha: float = 1e12

    @property
    def label(self) -> str:
        return "constant (no heterogeneity)"


class LinearDesign:
    """Standardized numbers (missing ones at the mean) and one-hot categories, per feature."""

    def __init__(self, M, categorical):
        p = M.shape[1]
        self.p = p
        self.categorical = set(categorical)
        self.levels = {}
        for j in self.categorical:
            seen = M[:, j][~np.isnan(M[:, j])]
            self.levels[j] = np.unique(seen).astype(int) if seen.size else np.array([], int)
        self.means = np.zeros(p)
        self.scales = np.ones(p)
        for j in range(p):
            if j in self.categorical:
                continue
            column = M[:, j]
            ok = ~np.isnan(column)
            self.means[j] = column[ok].mean() if ok.any() else 0.0
            scale = column[ok].std() if ok.any() else 0.0
            self.scales[j] = scale if scale > 0 else 1.0
        self.groups = self.columns(M[:0])[1]

    def columns(self, M):
        """The design matrix Z and, for each of its columns, the feature it comes from."""
        blocks, groups = [], []
        for j in range(M.shape[1]):
            column = M[:, j]
            if j in self.categorical:
                levels = self.levels[j]
                blocks.append((column[:, None] == levels[None, :]).astype(float))
                groups.extend([j] * len(levels))
            else:
                filled = np.where(np.isnan(column), self.means[j], column)
                blocks.append(((filled - self.means[j]) / self.scales[j])[:, None])
                groups.append(j)
        return np.hstack(blocks), np.asarray(groups, int)

    def centred(self, M, weight):
        """The design matrix minus its (weighted) column means, and those means."""
        Z, _ = self.columns(M)
        z_mean = np.average(Z, axis=0, weights=weight)
        return Z - z_mean, z_mean

    def per_feature(self, parts: np.ndarray) -> np.ndarray:
        """(n, design columns) to (n, features + 1), summed per feature; last column empty."""
        out = np.zeros((parts.shape[0], self.p + 1))
        np.add.at(out.T, self.groups, parts.T)
        return out


class RidgeModel:
    def __setstate__(self, state):
        # A model pickled before LinearDesign (commit 04da51e) kept the design's parts itself.
        if "design" not in state:
            design = LinearDesign.__new__(LinearDesign)
            for key in ("p", "categorical", "levels", "means", "scales", "groups"):
                setattr(design, key, state.pop(key))
            state["design"] = design
        self.__dict__.update(state)

    @classmethod
    def fit(cls, M, y, weight, categorical, alpha):
        self = cls()
        self.design = LinearDesign(M, categorical)
        Zc, self.z_mean = self.design.centred(M, weight)
        y_mean = np.average(y, weights=weight)
        Zw = Zc if weight is None else Zc * np.asarray(weight, float)[:, None]
        gram = Zw.T @ Zc + alpha * np.eye(Zc.shape[1])
        self.coef = np.linalg.solve(gram, Zw.T @ (y - y_mean))
        self.intercept = y_mean
        return self

    def predict(self, M):
        Z, _ = self.design.columns(M)
        return self.intercept + (Z - self.z_mean) @ self.coef

    def contrib(self, M):
        Z, _ = self.design.columns(M)
        out = self.design.per_feature((Z - self.z_mean) * self.coef)
        out[:, -1] = self.intercept
        return out


@dataclass(frozen=True)
class LogLinearSpec:
    """A generalized linear model with a log link, E[y | x] = exp(b + z·w), ridge-penalized.

    For positive outcomes that grow multiplicatively (costs, counts, scores far above zero):
    trees and straight lines cannot follow an exponential surface beyond the training range,
    and on IHDP the people who decide the error sit exactly there. Only tried, as a default
    candidate, for an arm whose outcomes are all positive (``accepts``); picked like every
    candidate by held-out error. Fitted by scikit-learn's ``TweedieRegressor`` (normal errors).
    """

    alpha: float = 1e-3

    @property
    def label(self) -> str:
        return f"log-linear(alpha={self.alpha})"

    @staticmethod
    def accepts(y: np.ndarray) -> bool:
        return bool(len(y)) and bool(np.all(y > 0))

    outcome_only = True  # effects and pseudo-outcomes are signed: no log link for them

    def fit(self, matrix, rows, y, weight, *, seed, n_jobs, rounds=None, valid=None):
        return LogLinearModel.fit(matrix.M[rows], y, weight, matrix.categorical, self.alpha), None


class LogLinearModel:
    """exp(η), η = b + (z − z̄)·w, clipped to the training range of η widened by log 10.

    Contributions are the integrated gradients from the mean person (η = b) along the straight
    path: feature j gets its share of η − b times (exp(η) − exp(b)) / (η − b). They sum
    exactly to exp(η) − exp(b), and the base is exp(b).
    """

    @classmethod
    def fit(cls, M, y, weight, categorical, alpha):
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import TweedieRegressor

        self = cls()
        self.design = LinearDesign(M, categorical)
        Zc, self.z_mean = self.design.centred(M, weight)
        glm = TweedieRegressor(
            power=0.0, link="log", alpha=alpha, solver="newton-cholesky", max_iter=200
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            glm.fit(Zc, y, sample_weight=weight)
        self.coef = np.asarray(glm.coef_, float)
        self.intercept = float(glm.intercept_)
        eta = self.intercept + Zc @ self.coef
        self.eta_range = (float(eta.min()) - np.log(10.0), float(eta.max()) + np.log(10.0))
        return self

    def _eta(self, M):
        Z, _ = self.design.columns(M)
        return Z, self.intercept + (Z - self.z_mean) @ self.coef

    def predict(self, M):
        _, eta = self._eta(M)
        return np.exp(np.clip(eta, *self.eta_range))

    def contrib(self, M):
        Z, eta = self._eta(M)
        clipped = np.clip(eta, *self.eta_range)
        step = eta - self.intercept
        base = np.exp(self.intercept)
        safe = np.where(np.abs(step) > 1e-12, step, 1.0)
        # exp(b) (exp(η − b) − 1) / (η − b), and its limit exp(b) at η = b
        slope = np.where(np.abs(step) > 1e-12, (np.exp(clipped) - base) / safe, base)
        out = self.design.per_feature((Z - self.z_mean) * self.coef * slope[:, None])
        out[:, -1] = base
        return out
