"""The interval of a group's mean predicted effect: the model's own estimate, not a measured one.

The card shows, per group, the mean effect the model predicts for the arms it recommends (the
subgroup table's mean predicted EE effect, the fairness table's EE points avoided per person).
Beside a doubly robust policy value with its interval, such a mean without one reads as exact.
Two uncertainties make it up, and they add:

* the model's own: each person's prediction interval (at the evaluation's level) gives their
  standard error as half its width over ``z``. The mean of those standard errors bounds the
  standard error of the mean prediction whatever the correlation of the errors between people,
  and equals it when every error is the same one (an arm given one effect for everyone), so
  the interval is never narrower than the model's;
* the spread over people, ``sd / sqrt(n)``, as for the policy values: how far the mean could
  differ in another group of such people.

It is not corrected for choosing each person's best-looking arm, which leans a predicted
benefit optimistic; the doubly robust policy value beside it is the measured figure.
"""

from __future__ import annotations

import numpy as np

from recommender.evaluation._policy_value import Estimate, _z

__all__ = ["of_recommended", "predicted_mean"]


def predicted_mean(effect, lower=None, upper=None, *, alpha: float = 0.1) -> Estimate:
    """Mean of per-person predicted effects, with an interval from the model's own intervals.

    Parameters
    ----------
    effect : array-like of float
        Each person's predicted effect (of the arm recommended to them; 0 for usual care).
    lower, upper : array-like of float, optional
        The model's ``1 - alpha`` interval of each person's effect (0 and 0 for usual care).
        Without them the model stated no uncertainty and the interval is NaN: the spread over
        people alone would pass the model's estimate off as exact.
    alpha : float
        One minus the interval's coverage (the level ``lower`` and ``upper`` were made at).

    Returns
    -------
    Estimate
        ``se`` is ``sqrt(mean(se_i) ** 2 + sd ** 2 / n)``, ``se_i = (upper_i - lower_i) /
        (2 z)``; the interval is ``estimate ± z se``. NaN bounds for fewer than 2 people.

    Examples
    --------
    One effect for everyone: the group's interval is the model's.

    >>> est = predicted_mean([-4.0] * 4, [-6.0] * 4, [-2.0] * 4)
    >>> round(est.estimate, 2), round(est.lower, 2), round(est.upper, 2)
    (-4.0, -6.0, -2.0)

    People's predictions that differ widen it by their spread.

    >>> est = predicted_mean([-5.0, -3.0, -5.0, -3.0], [-7.0, -5.0, -7.0, -5.0],
    ...                      [-3.0, -1.0, -3.0, -1.0])
    >>> round(est.lower, 2), round(est.upper, 2)
    (-6.21, -1.79)
    """
    z = _z(alpha)
    effect = np.asarray(effect, dtype=float)
    n = effect.size
    mean = float(effect.mean()) if n else float("nan")
    if lower is None or upper is None or n < 2:
        nan = float("nan")
        return Estimate(mean, nan, nan, nan, int(n))
    width = np.asarray(upper, dtype=float) - np.asarray(lower, dtype=float)
    model_se = float(np.mean(width)) / (2 * z)
    spread_se = float(effect.std(ddof=1)) / np.sqrt(n)
    se = float(np.hypot(model_se, spread_se))
    return Estimate(mean, se, mean - z * se, mean + z * se, int(n))


def of_recommended(frame, recommended, *, control: str) -> np.ndarray:
    """Each person's figure for the arm recommended to them, from a people x arms ``frame``
    (an effect or one of its bounds); usual care's is 0, the effect of usual care against itself.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"coaching": [-2.0, -1.0], "yoga": [-3.0, 0.5]})
    >>> of_recommended(frame, ["yoga", "none"], control="none").tolist()
    [-3.0, 0.0]
    """
    table = frame.assign(**{control: 0.0})
    columns = table.columns.get_indexer(np.asarray(recommended, dtype=object))
    return table.to_numpy(dtype=float)[np.arange(len(table)), columns]
