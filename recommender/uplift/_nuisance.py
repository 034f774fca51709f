"""Shared first stage: folds, one outcome model per arm, propensities, AIPW scores.

Fitted once per ``fit`` and reused by every learner (and every candidate in auto selection):
the control arm's outcome model in particular is fitted once, not once per treated arm.
Each candidate regressor is cross-fitted for each arm; the one with the smallest held-out
prediction error makes the scores (a choice that needs no causal oracle), and all of them
stay available to the T-learner, whose pairs of outcome models are chosen by the doubly
robust loss instead (see ``_auto``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold

from recommender.errors import InputError

from ._base import OUTCOME_CROSSFIT, OUTCOME_REFIT
from ._propensity import Propensity, resolve_propensity
from ._regressors import (
    CrossFit,
    GBMSpec,
    LogLinearSpec,
    RidgeSpec,
    TrainingMatrix,
    crossfit,
    refit,
)

__all__ = ["Nuisance", "fit_nuisance", "make_folds", "DEFAULT_OUTCOME_CANDIDATES"]

DEFAULT_OUTCOME_CANDIDATES = (
    GBMSpec(num_leaves=7, min_child_samples=40, learning_rate=0.05),
    GBMSpec(num_leaves=31, min_child_samples=20, learning_rate=0.05),
    RidgeSpec(alpha=1.0),
    LogLinearSpec(alpha=1e-3),  # only for an arm whose outcomes are all positive
)


@dataclass
class Nuisance:
    M: np.ndarray
    codes: np.ndarray
    y: np.ndarray
    arms: list
    folds: np.ndarray
    categorical: list
    outcome: list  # per arm (control first): the CrossFit with the smallest held-out error
    outcome_fits: list  # per arm: every candidate's CrossFit
    outcome_table: list  # rows (arm, candidate label, held-out MSE, chosen)
    mu: np.ndarray  # (n, arms) out-of-fold E[y | x, arm]
    propensity: Propensity
    scores: np.ndarray  # (n, arms) AIPW scores Gamma
    seed: int
    n_jobs: int
    matrix: TrainingMatrix  # M, binned once for every LightGBM fit of every stage

    def pseudo_effects(self) -> np.ndarray:
        """Gamma_a - Gamma_control for each non-control arm, shape (n, arms - 1)."""
        return self.scores[:, 1:] - self.scores[:, :1]


def make_folds(codes: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    folds = np.empty(len(codes), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, held_out) in enumerate(splitter.split(np.zeros(len(codes)), codes)):
        folds[held_out] = k
    return folds


def fit_nuisance(
    M,
    codes,
    y,
    arms,
    *,
    categorical,
    feature_names,
    propensity,
    design,
    clip,
    n_folds,
    seed,
    n_jobs,
    candidates=DEFAULT_OUTCOME_CANDIDATES,
    encoder=None,
    refit_outcomes=True,
    per_arm_candidates=None,
    matrix=None,
) -> Nuisance:
    """``matrix``: a ``TrainingMatrix`` of this very ``M`` to reuse its binning."""
    folds = make_folds(codes, n_folds, seed)
    matrix = TrainingMatrix(M, categorical) if matrix is None else matrix
    outcome, outcome_fits, table = [], [], []
    mu = np.empty((len(M), len(arms)))
    for a, arm in enumerate(arms):
        rows = codes == a
        if per_arm_candidates is None:
            specs = [spec for spec in candidates if spec.accepts(y[rows])]
            if not specs:
                raise InputError(
                    f"no outcome model candidate suits arm {arm!r}: "
                    f"{[spec.label for spec in candidates]} all refuse its outcomes"
                )
        else:
            specs = per_arm_candidates[a]
        fits: list[CrossFit] = [
            crossfit(spec, matrix, y, rows, folds, seed=OUTCOME_CROSSFIT(seed, a), n_jobs=n_jobs)
            for spec in specs
        ]
        best = int(np.argmin([f.loss for f in fits]))
        for c, f in enumerate(fits):
            table.append((arm, f.spec.label, f.loss, c == best))
        chosen = fits[best]
        if refit_outcomes:
            refit(chosen, matrix, y, rows, seed=OUTCOME_REFIT(seed, a), n_jobs=n_jobs)
        outcome.append(chosen)
        outcome_fits.append(fits)
        mu[:, a] = chosen.oof
    prop = resolve_propensity(
        M,
        codes,
        arms,
        folds,
        categorical,
        feature_names,
        given=propensity,
        design=design,
        clip=clip,
        encoder=encoder,
    )
    # a given propensity is authoritative (not clipped); estimates were clipped already
    received = prop.received
    n = len(M)
    scores = mu.copy()
    scores[np.arange(n), codes] += (y - mu[np.arange(n), codes]) / received
    return Nuisance(
        M,
        codes,
        y,
        arms,
        folds,
        categorical,
        outcome,
        outcome_fits,
        table,
        mu,
        prop,
        scores,
        seed,
        n_jobs,
        matrix,
    )
