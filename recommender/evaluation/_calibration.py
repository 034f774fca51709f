"""Calibration of predicted effects against doubly robust effects.

Two views per arm. By quantile: people are cut into ``n_bins`` equal-sized bins of predicted
effect, and in each bin the mean prediction is set beside the mean doubly robust effect
``Γ_arm - Γ_control`` (with an interval); a calibrated model puts the points on the diagonal.
As one number: the calibration slope, the least-squares slope of the doubly robust effect on
the prediction. 1 means the predicted differences between people are right on average, 0 that
they carry no information about who benefits more, and above 1 that the model under-states
them. Its interval uses heteroscedasticity-robust (HC1) standard errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.levels import check_alpha, two_sided_z
from recommender.evaluation._constant import is_constant
from recommender.evaluation._policy_value import Estimate, mean_estimate

__all__ = ["calibration_bins", "calibration_slope", "calibration_table"]


def calibration_bins(predicted, dr_effect, *, n_bins: int = 10, alpha: float = 0.1) -> pd.DataFrame:
    """Mean predicted versus mean doubly robust effect in quantile bins of the prediction.

    Bins are equal-sized by rank (the first ``n % n_bins`` bins get one person more), so ties
    in the prediction never produce empty or lopsided bins; ``n_bins`` shrinks to the number of
    people when there are fewer.

    Examples
    --------
    >>> table = calibration_bins([4, 1, 3, 2], [40.0, 10.0, 30.0, 20.0], n_bins=2)
    >>> table[["n", "predicted", "observed"]].values.tolist()
    [[2.0, 1.5, 15.0], [2.0, 3.5, 35.0]]
    """
    p = np.asarray(predicted, dtype=float)
    d = np.asarray(dr_effect, dtype=float)
    n = p.size
    bins = max(min(int(n_bins), n), 1)
    order = np.argsort(p, kind="stable")
    rows = []
    for k, members in enumerate(np.array_split(order, bins)):
        est = mean_estimate(d[members], alpha=alpha)
        rows.append(
            {
                "bin": k + 1,
                "n": int(members.size),
                "predicted": float(p[members].mean()),
                "observed": est.estimate,
                "se": est.se,
                "lower": est.lower,
                "upper": est.upper,
            }
        )
    return pd.DataFrame(rows).set_index("bin")


def calibration_slope(predicted, dr_effect, *, alpha: float = 0.1) -> Estimate:
    """Least-squares slope of the doubly robust effect on the predicted effect (HC1 interval).

    Returns NaN when the prediction is constant (no slope to measure).

    Examples
    --------
    >>> round(calibration_slope([0, 1, 2, 3], [1.0, 3.0, 5.0, 7.0]).estimate, 6)
    2.0
    """
    z = two_sided_z(check_alpha(alpha))
    p = np.asarray(predicted, dtype=float)
    d = np.asarray(dr_effect, dtype=float)
    n = p.size
    centred = p - p.mean()
    sxx = float((centred**2).sum())
    if n < 3 or is_constant(p):
        nan = float("nan")
        return Estimate(nan, nan, nan, nan, int(n))
    slope = float((centred * (d - d.mean())).sum() / sxx)
    residual = d - d.mean() - slope * centred
    se = float(np.sqrt(n / (n - 2) * (centred**2 * residual**2).sum()) / sxx)
    return Estimate(slope, se, slope - z * se, slope + z * se, int(n))


def calibration_table(
    scores: pd.DataFrame,
    effects: pd.DataFrame,
    *,
    control: str = "none",
    n_bins: int = 10,
    alpha: float = 0.1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Calibration bins (long table with an ``arm`` column) and slope per arm."""
    bins, slopes = [], {}
    for arm in effects.columns:
        predicted = effects[arm].to_numpy(dtype=float)
        dr_effect = scores[arm].to_numpy(dtype=float) - scores[control].to_numpy(dtype=float)
        arm_bins = calibration_bins(predicted, dr_effect, n_bins=n_bins, alpha=alpha)
        bins.append(arm_bins.reset_index().assign(arm=arm))
        slopes[arm] = calibration_slope(predicted, dr_effect, alpha=alpha).to_dict()
    bin_table = pd.concat(bins, ignore_index=True) if bins else pd.DataFrame()
    slope_table = pd.DataFrame.from_dict(slopes, orient="index")
    slope_table.index.name = "arm"
    return bin_table, slope_table
