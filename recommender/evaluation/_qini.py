"""Qini curves and the area under them, per arm, from doubly robust scores.

Definition used (documented because several circulate). People are ranked by the model's
predicted benefit of the arm over control (``-predicted effect``, most benefit first). The
Qini curve at fraction ``φ`` is the EE points avoided per person of the *whole* cohort if only
the top ``φ`` got the arm and everyone else control::

    Q(φ) = (1/n) Σ_{j ≤ φn} b_(j),      b_i = -(Γ_{i,arm} - Γ_{i,control})

with ``Γ`` the cross-fitted AIPW scores. This is Radcliffe's Qini (incremental gain of the top
``k`` versus control, per person) with the doubly robust effect in place of the
treated-minus-scaled-control outcome sums; it uses every row, not only the arm and control
rows, and stays unbiased with non-uniform propensities (the observed-outcome Qini does not).
Random ranking gives the straight line ``φ · mean(b)``. ``auuc`` is the area under ``Q`` on
[0, 1] (right-endpoint sum over the ``n`` people); ``qini`` is the area between ``Q`` and the
random line, in EE points per person: 0 for a ranking no better than chance, with an interval.
It equals the Qini-weighted RATE of Yadlowsky et al. (2021); tied predictions share their
weight so a constant prediction scores exactly 0, a prediction constant up to rounding
included (see ``recommender.evaluation._constant``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.evaluation._constant import is_constant
from recommender.evaluation._policy_value import mean_estimate

__all__ = ["qini_curve", "qini_terms", "qini_table"]


def _ranking(predicted_benefit) -> np.ndarray:
    """The ranking score, with a prediction constant up to rounding made exactly constant."""
    score = np.asarray(predicted_benefit, dtype=float)
    return np.zeros_like(score) if is_constant(score) else score


def _order(predicted_benefit: np.ndarray) -> np.ndarray:
    # Stable sort so that equal predictions keep row order (deterministic curves).
    return np.argsort(-_ranking(predicted_benefit), kind="stable")


def qini_curve(benefit, predicted_benefit, *, points: int = 101) -> pd.DataFrame:
    """Qini curve sampled at ``points`` evenly spaced fractions of the cohort.

    Parameters
    ----------
    benefit : array-like of float
        Per-person doubly robust benefit ``b_i`` (EE points avoided by the arm versus control).
    predicted_benefit : array-like of float
        The ranking score (``-predicted effect``); higher is treated first.

    Returns
    -------
    DataFrame
        Columns ``fraction``, ``qini`` (model ranking) and ``random`` (straight line).

    Examples
    --------
    >>> qini_curve([0.0, 2.0], [0.0, 1.0], points=3)["qini"].tolist()
    [0.0, 1.0, 1.0]
    """
    b = np.asarray(benefit, dtype=float)
    n = b.size
    if is_constant(predicted_benefit):  # every order of equals, averaged: the random line
        cumulative = np.arange(n + 1) * (b.mean() if n else 0.0) / max(n, 1)
    else:
        ranked = b[_order(np.asarray(predicted_benefit, dtype=float))]
        cumulative = np.concatenate([[0.0], np.cumsum(ranked)]) / n
    fraction = np.linspace(0.0, 1.0, points)
    k = np.rint(fraction * n).astype(int)
    return pd.DataFrame(
        {"fraction": fraction, "qini": cumulative[k], "random": fraction * (b.mean() if n else 0.0)}
    )


def qini_terms(benefit, predicted_benefit) -> np.ndarray:
    """Per-person terms whose mean is the Qini coefficient (area between curve and random).

    Person at rank ``j`` (1 = most predicted benefit) of ``n`` gets weight
    ``(n + 1 - 2j) / (2n)``; ties share the mean weight of their ranks.

    Examples
    --------
    >>> qini_terms([3.0, 1.0], [1.0, 0.0]).tolist()
    [0.75, -0.25]
    >>> qini_terms([3.0, 1.0], [-2.0, -2.0 + 1e-9]).tolist()  # one effect for everyone
    [0.0, 0.0]
    """
    b = np.asarray(benefit, dtype=float)
    n = b.size
    if is_constant(predicted_benefit):  # the weights' mean is 0; its rounding is not
        return np.zeros_like(b)
    return b * _tied(predicted_benefit, (n + 1 - 2 * np.arange(1, n + 1)) / (2 * n))


def _tied(predicted_benefit, by_rank: np.ndarray) -> np.ndarray:
    """Each person's weight, ``by_rank[j]`` for the person ranked ``j + 1``, averaged over
    tied predictions: ranking among equals is arbitrary."""
    score = _ranking(predicted_benefit)
    weight = np.empty(score.size, dtype=float)
    weight[_order(score)] = by_rank
    _, group = np.unique(score, return_inverse=True)
    return (np.bincount(group, weights=weight) / np.bincount(group))[group]


def qini_table(
    scores: pd.DataFrame,
    effects: pd.DataFrame,
    *,
    control: str = "none",
    alpha: float = 0.1,
    true_effects: pd.DataFrame | None = None,
    points: int = 101,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Qini coefficient (with interval), AUUC and curve for every arm in ``effects``.

    With ``true_effects`` the ranking by the true effect is scored on the same doubly robust
    benefits (``qini_oracle``) and ``qini_share_of_oracle`` compares the two.

    Returns
    -------
    (DataFrame, dict)
        Table indexed by arm with ``qini, se, lower, upper, auuc, auuc_random`` (and oracle
        columns), and the curves by arm.
    """
    rows, curves = {}, {}
    for arm in effects.columns:
        benefit = -(scores[arm].to_numpy(dtype=float) - scores[control].to_numpy(dtype=float))
        predicted = -effects[arm].to_numpy(dtype=float)
        est = mean_estimate(qini_terms(benefit, predicted), alpha=alpha)
        n = benefit.size
        # the area under the curve, ties sharing their weight as in the Qini
        auuc = float(np.mean(benefit * _tied(predicted, (n - np.arange(n)) / n))) if n else np.nan
        row = {
            "qini": est.estimate,
            "se": est.se,
            "lower": est.lower,
            "upper": est.upper,
            "auuc": auuc,
            "auuc_random": float(benefit.mean() * (n + 1) / (2 * n)),
            "n": n,
        }
        curve = qini_curve(benefit, predicted, points=points)
        if true_effects is not None and arm in true_effects.columns:
            truth = -true_effects[arm].to_numpy(dtype=float)
            oracle = float(qini_terms(benefit, truth).mean())
            row["qini_oracle"] = oracle
            row["qini_share_of_oracle"] = est.estimate / oracle if oracle > 0 else float("nan")
            curve["oracle"] = qini_curve(benefit, truth, points=points)["qini"]
        rows[arm] = row
        curves[arm] = curve
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "arm"
    return table, curves
