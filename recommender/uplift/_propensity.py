"""Probabilities of each arm: the design's shares, the logged values, or an estimate.

In a randomized cohort the propensity is known by design; a flexible classifier fitted to it
only adds noise that the inverse weights then amplify (a LightGBM propensity of 0.004–0.90 for
a true 0.2 is what sinks other packages' DR learners). So ``design="randomized"`` uses the
empirical arm shares, a propensity column passed by the caller is authoritative, and only an
observational cohort without one gets an estimate: a regularized multinomial logistic
regression, cross-fitted, clipped, with a warning that names arms and regions of poor overlap.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression

__all__ = ["Propensity", "PoorOverlapWarning", "estimate_propensity"]


class PoorOverlapWarning(UserWarning):
    """Estimated propensities below the clip: effects for those rows rest on extrapolation.

    Besides its message, it carries ``clip`` (the lower bound the propensities were clipped
    at) and ``arms``, one ``(arm, rows, region)`` per arm concerned (``region`` says which
    feature value best singles those rows out, "" when none does), so that a caller fitting
    several models on the same rows (one per outcome) can say it once.
    """

    def __init__(self, clip: float, arms: tuple):
        self.clip = clip
        self.arms = tuple(arms)
        described = [
            f"arm {arm!r}: {rows} rows with estimated propensity below {clip}"
            + (f", {region}" if region else "")
            for arm, rows, region in self.arms
        ]
        super().__init__(
            f"poor overlap, propensities clipped at {clip} (effects there rest on "
            "extrapolation): " + "; ".join(described)
        )

    def __reduce__(self):  # rebuilt from its facts, not its message (copied, pickled)
        return type(self), (self.clip, self.arms)


class Propensity:
    """``matrix`` (n, arms) of probabilities and ``received`` (n,) for the arm each row got.

    When only the received arm's probability is known (a logged column), ``matrix`` holds
    the estimate for the other arms (used only to weight the X-learner's two halves).
    """

    def __init__(self, matrix: np.ndarray, received: np.ndarray, source: str):
        self.matrix = matrix
        self.received = received
        self.source = source


def _design_matrix(M, categorical, stats=None):
    """Standardized numbers and one-hot categories for the logistic model."""
    if stats is None:
        stats = {}
        for j in range(M.shape[1]):
            column = M[:, j]
            seen = column[~np.isnan(column)]
            if j in categorical:
                stats[j] = np.unique(seen)
            else:
                mean = seen.mean() if seen.size else 0.0
                sd = seen.std() if seen.size else 1.0
                stats[j] = (mean, sd if sd > 0 else 1.0)
    blocks = []
    for j in range(M.shape[1]):
        column = M[:, j]
        if j in categorical:
            blocks.append((column[:, None] == stats[j][None, :]).astype(float))
        else:
            mean, sd = stats[j]
            blocks.append(((np.where(np.isnan(column), mean, column) - mean) / sd)[:, None])
    return np.hstack(blocks), stats


def estimate_propensity(M, codes, n_arms, folds, categorical, *, C=1.0) -> np.ndarray:
    """Cross-fitted multinomial logistic probabilities, shape (n, n_arms)."""
    out = np.empty((len(M), n_arms))
    for k in range(int(folds.max()) + 1):
        train = folds != k
        Z, stats = _design_matrix(M[train], categorical)
        model = LogisticRegression(C=C, max_iter=300, tol=1e-4)
        model.fit(Z, codes[train])
        Zk, _ = _design_matrix(M[folds == k], categorical, stats)
        proba = np.zeros((int((folds == k).sum()), n_arms))
        proba[:, model.classes_] = model.predict_proba(Zk)
        out[folds == k] = proba
    return out


def resolve_propensity(
    M, codes, arms, folds, categorical, feature_names, *, given, design, clip, encoder=None
) -> Propensity:
    n, n_arms = len(M), len(arms)
    shares = np.bincount(codes, minlength=n_arms) / n
    if design == "randomized" and given is None:
        matrix = np.tile(shares, (n, 1))
        return Propensity(matrix, matrix[np.arange(n), codes], "design shares")
    if given is not None:
        # only the received arm's probability enters the scores; the X-learner weighs its two
        # halves by arm shares, so no model of the other arms' probabilities is needed
        matrix = np.tile(shares, (n, 1))
        return Propensity(matrix, np.asarray(given, float), "given")
    matrix = estimate_propensity(M, codes, n_arms, folds, categorical)
    low = clip[0]
    _warn_poor_overlap(matrix, M, arms, categorical, feature_names, low, encoder)
    matrix = np.clip(matrix, low, clip[1])
    return Propensity(matrix, matrix[np.arange(n), codes], "estimated")


def _warn_poor_overlap(matrix, M, arms, categorical, names, low, encoder):
    concerned = []
    for a, arm in enumerate(arms):
        poor = matrix[:, a] < low
        if poor.any():
            concerned.append(
                (str(arm), int(poor.sum()), _describe_region(M, poor, categorical, names, encoder))
            )
    if concerned:
        warnings.warn(PoorOverlapWarning(low, concerned), stacklevel=4)


def _describe_region(M, rows, categorical, names, encoder) -> str:
    """The feature value that best singles out the poor-overlap rows, in words ("" if none)."""
    best, best_lift = "", 0.0
    for j, name in enumerate(names):
        column = M[:, j]
        if j in categorical:
            for code in np.unique(column[rows][~np.isnan(column[rows])]):
                inside = np.mean(column[rows] == code)
                outside = np.mean(column == code)
                if outside > 0 and inside / outside > best_lift:
                    label = code
                    if encoder is not None:
                        label = encoder.categories[j][int(code)]
                    best_lift = inside / outside
                    best = f"mostly {name}={label} ({inside:.0%} of them)"
        else:
            seen = column[rows][~np.isnan(column[rows])]
            if seen.size == 0:
                continue
            lo, hi = np.percentile(seen, [5, 95])
            share_all = np.mean((column >= lo) & (column <= hi))
            lift = 0.9 / share_all if share_all > 0 else 0.0
            if lift > best_lift:
                best_lift = lift
                best = f"mostly {name} in [{lo:.3g}, {hi:.3g}]"
    return best
