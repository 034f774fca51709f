"""Shared first stage: folds, one outcome model per arm, propensities, AIPW scores.

Fitted once per ``fit`` and reused by every learner (and every candidate in auto selection):
the control arm's outcome model in particular is fitted once, not once per treated arm.
Each arm's outcome model is chosen among a few candidate regressors by cross-validated
prediction error, a choice that needs no causal oracle. Optionally (``pooled_spec``) a model
m(x) fitted on every row first takes out what all arms share, and each arm's model fits the
residual y − m(x); on the default scenario this was worse than separate models, so it is off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold

from ._propensity import Propensity, resolve_propensity
from ._regressors import CrossFit, GBMSpec, RidgeSpec, crossfit, refit

__all__ = ["Nuisance", "fit_nuisance", "make_folds", "DEFAULT_OUTCOME_CANDIDATES"]

DEFAULT_OUTCOME_CANDIDATES = (
    GBMSpec(num_leaves=7, min_child_samples=40, learning_rate=0.05),
    GBMSpec(num_leaves=31, min_child_samples=20, learning_rate=0.05),
    RidgeSpec(alpha=1.0),
)


@dataclass
class Nuisance:
    M: np.ndarray
    codes: np.ndarray
    y: np.ndarray
    arms: list
    folds: np.ndarray
    categorical: list
    pooled: np.ndarray  # (n,) out-of-fold m(x) shared by all arms (zeros when not used)
    outcome: list  # CrossFit per arm (control first) of the residual y - m(x)
    outcome_table: list  # rows (arm, candidate label, held-out MSE, chosen)
    mu: np.ndarray  # (n, arms) out-of-fold E[y | x, arm]
    propensity: Propensity
    scores: np.ndarray  # (n, arms) AIPW scores Gamma
    seed: int
    n_jobs: int

    def pseudo_effects(self) -> np.ndarray:
        """Gamma_a - Gamma_control for each non-control arm, shape (n, arms - 1)."""
        return self.scores[:, 1:] - self.scores[:, :1]


def make_folds(codes: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    folds = np.empty(len(codes), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, held_out) in enumerate(splitter.split(np.zeros(len(codes)), codes)):
        folds[held_out] = k
    return folds


def fit_nuisance(M, codes, y, arms, *, categorical, feature_names, propensity, design, clip,
                 n_folds, seed, n_jobs, candidates=DEFAULT_OUTCOME_CANDIDATES, encoder=None,
                 refit_outcomes=True, per_arm_candidates=None, pooled_spec=None
                 ) -> Nuisance:
    folds = make_folds(codes, n_folds, seed)
    everyone = np.ones(len(M), dtype=bool)
    pooled = np.zeros(len(M))
    if pooled_spec is not None:
        pooled = crossfit(pooled_spec, M, y, everyone, folds, categorical=categorical,
                          seed=seed + 1, n_jobs=n_jobs, refit=False).oof
    residual = y - pooled
    outcome, table = [], []
    mu = np.empty((len(M), len(arms)))
    for a, arm in enumerate(arms):
        rows = codes == a
        fits: list[CrossFit] = [
            crossfit(spec, M, residual, rows, folds, categorical=categorical, seed=seed + 101 * a,
                     n_jobs=n_jobs, refit=False)
            for spec in (candidates if per_arm_candidates is None else per_arm_candidates[a])
        ]
        best = int(np.argmin([f.loss for f in fits]))
        for c, f in enumerate(fits):
            table.append((arm, f.spec.label, f.loss, c == best))
        chosen = fits[best]
        if refit_outcomes:
            refit(chosen, M, residual, rows, categorical=categorical, seed=seed + 101 * a + 50,
                  n_jobs=n_jobs)
        outcome.append(chosen)
        mu[:, a] = pooled + chosen.oof
    prop = resolve_propensity(M, codes, arms, folds, categorical, feature_names, given=propensity,
                              design=design, clip=clip, encoder=encoder)
    # a given propensity is authoritative (not clipped); estimates were clipped already
    received = prop.received
    n = len(M)
    scores = mu.copy()
    scores[np.arange(n), codes] += (y - mu[np.arange(n), codes]) / received
    return Nuisance(M, codes, y, arms, folds, categorical, pooled, outcome, table, mu, prop,
                    scores, seed, n_jobs)
