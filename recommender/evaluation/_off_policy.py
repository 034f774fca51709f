"""Judging a policy on a program's own log: off-policy estimates with intervals.

The log holds, per served person, the arm served, the probability it was served with and the
outcome that followed. A new policy (a challenger model's best arm per person) can be valued
on that log without serving it:

``ips``
    Inverse propensity scoring: rows where the log served what the policy would, weighted by
    one over the logged probability. Unbiased when every probability is logged and positive
    where the policy acts; high variance.
``snips``
    Self-normalised IPS: the same weights divided by their mean. A little bias, much less
    variance.
``dr``
    Doubly robust: an outcome model's prediction for the policy's arm, corrected by the
    weighted residual where the log agrees (the AIPW scores of :mod:`recommender.uplift`).
    Consistent if either the probabilities or the outcome model are right; the primary figure.

Every value is the policy's expected change in the outcome *against usual care for all* on the
same rows (for EE, negative = less exhaustion than usual care), so policies compare directly
and the figure matches the training pipeline's policy value. Intervals are normal intervals
from the per-row influence values (delta method for SNIPS).

Each estimate carries ``effective_n``, Kish's effective number of rows behind its weights
(the smaller of the policy's and usual care's): a few rows logged with a small probability
take large weights, and the estimate and its normal interval then rest on far fewer rows than
``n`` (an interval from few effective rows can be too narrow).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.levels import check_alpha, two_sided_z
from recommender.errors import InputError

__all__ = ["OffPolicyEstimate", "off_policy_values", "OFF_POLICY_METHODS"]

OFF_POLICY_METHODS = ("dr", "ips", "snips")


@dataclass(frozen=True)
class OffPolicyEstimate:
    """One estimator's value of one policy, with a two-sided ``1 - alpha`` interval."""

    method: str
    estimate: float
    lower: float
    upper: float
    n: int
    effective_n: float = float("nan")

    def covers(self, value: float) -> bool:
        return self.lower <= value <= self.upper


def _interval(method, influence, estimate, alpha, effective_n) -> OffPolicyEstimate:
    n = len(influence)
    half = two_sided_z(alpha) * float(np.std(influence, ddof=1)) / np.sqrt(n)
    return OffPolicyEstimate(
        method, float(estimate), float(estimate - half), float(estimate + half), n, effective_n
    )


def _effective_rows(weights: np.ndarray) -> float:
    """Kish's effective sample size of non-negative weights: ``(sum w)^2 / sum w^2``."""
    squares = float((weights**2).sum())
    return float(weights.sum() ** 2 / squares) if squares > 0 else 0.0


def off_policy_values(
    logged_arm,
    propensity,
    outcome,
    target_arm,
    *,
    control: str = "none",
    dr_scores: pd.DataFrame | None = None,
    alpha: float = 0.1,
) -> dict[str, OffPolicyEstimate]:
    """Off-policy value of ``target_arm`` against usual care for all, on a log.

    Parameters
    ----------
    logged_arm : array-like of str
        The arm the log served each row.
    propensity : array-like of float
        The logged probability of that arm, in (0, 1].
    outcome : array-like of float
        The outcome that followed (follow-up minus baseline; lower is better for EE).
    target_arm : array-like of str
        The arm the evaluated policy would serve each row.
    control : str
        Usual care.
    dr_scores : DataFrame, optional
        Cross-fitted AIPW scores per arm (``recommender.uplift.doubly_robust_scores`` with the
        logged propensities), one column per arm including ``control``; without them only IPS
        and SNIPS are given.
    alpha : float
        Intervals are two-sided ``1 - alpha``.

    Returns
    -------
    dict
        ``{"dr": ..., "ips": ..., "snips": ...}`` of :class:`OffPolicyEstimate`.

    Examples
    --------
    >>> import numpy as np
    >>> arm = np.array(["a", "none"] * 200); p = np.full(400, 0.5)
    >>> y = np.where(arm == "a", -2.0, 0.0) + np.tile([0.1, 0.2, -0.1, -0.2], 100)
    >>> v = off_policy_values(arm, p, y, np.full(400, "a"))
    >>> round(v["ips"].estimate, 2), round(v["snips"].estimate, 2)
    (-2.0, -2.0)
    """
    alpha = check_alpha(alpha)
    logged_arm = np.asarray(logged_arm, dtype=object)
    target_arm = np.asarray(target_arm, dtype=object)
    p = np.asarray(propensity, dtype=float)
    y = np.asarray(outcome, dtype=float)
    n = len(y)
    if not (len(logged_arm) == len(p) == len(target_arm) == n) or n < 2:
        raise InputError(
            f"off-policy evaluation needs equally long inputs of at least 2 rows; "
            f"got {len(logged_arm)}, {len(p)}, {n}, {len(target_arm)}"
        )
    if not (np.all(np.isfinite(p)) and np.all((p > 0) & (p <= 1))):
        raise InputError("propensity: every logged probability must lie in (0, 1]")
    if not np.all(np.isfinite(y)):
        raise InputError("outcome: every outcome must be a finite number")
    follows = (logged_arm == target_arm).astype(float) / p
    usual = (logged_arm == control).astype(float) / p
    effective = min(_effective_rows(follows), _effective_rows(usual))
    out = {}
    gain = (follows - usual) * y
    out["ips"] = _interval("ips", gain, gain.mean(), alpha, effective)
    if follows.sum() > 0 and usual.sum() > 0:
        v1 = float((follows * y).sum() / follows.sum())
        v0 = float((usual * y).sum() / usual.sum())
        influence = follows * (y - v1) / follows.mean() - usual * (y - v0) / usual.mean()
        out["snips"] = _interval("snips", influence, v1 - v0, alpha, effective)
    else:
        nan = float("nan")
        out["snips"] = OffPolicyEstimate("snips", nan, nan, nan, n, effective)
    if dr_scores is not None:
        columns = {str(c): j for j, c in enumerate(dr_scores.columns)}
        missing = sorted(set(map(str, target_arm)) - set(columns)) + (
            [] if control in columns else [control]
        )
        if missing:
            raise InputError(f"dr_scores lack column(s) {missing} for the evaluated policy")
        table = dr_scores.to_numpy(dtype=float)
        rows = np.arange(n)
        chosen = table[rows, [columns[str(a)] for a in target_arm]]
        values = chosen - table[:, columns[control]]
        out["dr"] = _interval("dr", values, values.mean(), alpha, effective)
    return {m: out[m] for m in OFF_POLICY_METHODS if m in out}
