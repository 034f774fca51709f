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

Where the policy's arm differs from usual care, the value of a row needs both arms' outcomes,
and the log may not have been able to serve one of them there: the row was served another arm
with probability 1, or the arm was served on none of the log's rows (or, given the logged
candidates, had probability 0 there). Each estimate says on how many rows (``unmeasured``):
DR values them by its outcome model alone, IPS and SNIPS leave the missing arm's outcome out
(a bias they cannot see). When an arm the policy picks, or usual care, was never served at
all, the weights know nothing of it and IPS and SNIPS are not given (NaN) rather than a figure
with an interval that would not be about the policy.

Each estimate carries ``effective_n``, Kish's effective number of rows behind its weights
(the smaller of the policy's and usual care's): a few rows logged with a small probability
take large weights, and the estimate and its normal interval then rest on far fewer rows than
``n`` (an interval from few effective rows can be too narrow).

A normal interval also needs the weights' spread to rest on many rows, and Kish's count cannot
see when it does not: rows logged with probability 0.001 on a tenth of 20,000 rows are served
about twice, so an estimate rests on 0, 2 or 5 of them, each weighing 1,000, and its interval
covers the truth far less often than it says, whatever the effective rows. ``tail_rows`` is
the number of served rows the weights' skewness amounts to (that of a count of that mean),
from the logged probabilities of the policy's arm and of usual care on every row where they
differ; it needs ``candidates`` to give every row's probabilities (the service's log keeps
every candidate's), and is NaN otherwise. Below ``MIN_TAIL_ROWS`` (10 for IPS and DR, the
usual rule for a normal approximation to a count; 30 for SNIPS) no estimate is given (NaN,
"not measurable"): on simulated logs with probabilities down to 0.001 the intervals still
given cover as they say. Weights are never clipped (a bias of unknown size).

Not used, and why: a percentile bootstrap of the per-row values (Open Bandit Pipeline's
``estimate_confidence_interval_by_bootstrap``) resamples only the rows served and covered 81 %
where the normal interval covered 83 %; concentration bounds (Thomas, Theocharous and
Ghavamzadeh, "High Confidence Off-Policy Evaluation", AAAI 2015) are valid but, as they say,
loosened by the weighted outcomes' large possible range: Maurer and Pontil's empirical
Bernstein term alone, 7 b ln(2/delta) / (3 (n - 1)), is over 400 EE points on 2,000 rows whose
weights reach 1,000 and whose EE changes lie within 54 points either way. Kish's count is an approximation with known limits
(Elvira, Martino and Robert, "Rethinking the Effective Sample Size", arXiv:1809.04129). SNIPS
is Swaminathan and Joachims's self-normalised estimator (NeurIPS 2015, 3231-3239).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.levels import check_alpha, two_sided_z
from recommender.errors import InputError

__all__ = [
    "MIN_TAIL_ROWS",
    "OffPolicyEstimate",
    "off_policy_values",
    "OFF_POLICY_METHODS",
    "unservable",
]

OFF_POLICY_METHODS = ("dr", "ips", "snips")

# Fewest expected served rows (``tail_rows``) the weights may amount to for a normal interval:
# their count is near Poisson, and the usual rule for a normal approximation to a count is
# np >= 10. SNIPS's delta-method interval needs more: measured at 15-21 such rows it covered
# 90-92 % where IPS and DR covered 94-97 % (tests/test_evaluation_ope_tails_dec06.py).
MIN_TAIL_ROWS = {"dr": 10, "ips": 10, "snips": 30}


@dataclass(frozen=True)
class OffPolicyEstimate:
    """One estimator's value of one policy, with a two-sided ``1 - alpha`` interval.

    ``unmeasured``: the rows where the policy's arm differs from usual care and the log could
    not have served one of the two there (see the module's docstring).
    """

    method: str
    estimate: float
    lower: float
    upper: float
    n: int
    effective_n: float = float("nan")
    unmeasured: int = 0
    tail_rows: float = float("nan")

    def covers(self, value: float) -> bool:
        return self.lower <= value <= self.upper


def _interval(method, influence, estimate, alpha, effective_n, unmeasured, tail_rows):
    n = len(influence)
    if tail_rows < MIN_TAIL_ROWS[method]:
        return _not_given(method, n, effective_n, unmeasured, tail_rows)
    half = two_sided_z(alpha) * float(np.std(influence, ddof=1)) / np.sqrt(n)
    return OffPolicyEstimate(
        method,
        float(estimate),
        float(estimate - half),
        float(estimate + half),
        n,
        effective_n,
        unmeasured,
        tail_rows,
    )


def _not_given(method, n, effective_n, unmeasured, tail_rows=float("nan")) -> OffPolicyEstimate:
    nan = float("nan")
    return OffPolicyEstimate(method, nan, nan, nan, n, effective_n, unmeasured, tail_rows)


def unservable(logged_arm, propensity, arms, candidates=None) -> np.ndarray:
    """Per row, whether the log could not have served ``arms[i]`` on row ``i``.

    It could not where another arm was served with probability 1 (a greedy answer, a severe
    profile), where the arm was served on none of the rows, and, given ``candidates`` (per row
    the set of arms with a positive logged probability, or None where unknown), where the arm
    was not among the row's candidates.

    Examples
    --------
    >>> unservable(["a", "b", "a"], [1.0, 0.5, 0.5], ["b", "a", "c"]).tolist()
    [True, False, True]
    """
    logged_arm = np.asarray(logged_arm, dtype=object)
    arms = np.asarray(arms, dtype=object)
    certain = np.isclose(np.asarray(propensity, dtype=float), 1.0)
    never = ~np.isin(arms, list(set(logged_arm)))
    if candidates is None:
        candidates = [None] * len(arms)
    outside = np.array([c is not None and a not in c for a, c in zip(arms, candidates)], bool)
    return never | outside | (certain & (arms != logged_arm))


def _effective_rows(weights: np.ndarray) -> float:
    """Kish's effective sample size of non-negative weights: ``(sum w)^2 / sum w^2``."""
    squares = float((weights**2).sum())
    return float(weights.sum() ** 2 / squares) if squares > 0 else 0.0


def _tail_rows(arm, rows, candidates) -> float:
    """The expected served rows of a count as skewed as the weights of serving ``arm[i]`` on
    ``rows``: ``(sum 1/p)^3 / (sum 1/p^2)^2`` over every row's logged probability ``p`` of the
    arm (a row's squared weight has expectation ``1/p``, its cube ``1/p^2``); NaN unless
    ``candidates`` give every row's probabilities.

    A count of rows served with probability ``p`` is near Poisson with skewness
    ``1/sqrt(mean)``; this is the mean whose skewness the weights share: ``m * p`` for ``m``
    rows of one probability, the rows of the smallest probability when they carry the spread.
    From the weights of the rows served instead, it would not see the rows that happened not to
    be served, and would pass exactly the logs whose estimate misses their share.

    Examples
    --------
    >>> chance = [{"a": 0.5, "b": 0.5}] * 20
    >>> _tail_rows(np.full(20, "a"), np.ones(20, bool), chance)
    10.0
    >>> one_rare = [{"a": 0.5}] * 19 + [{"a": 0.001}]
    >>> round(_tail_rows(np.full(20, "a"), np.ones(20, bool), one_rare), 4)
    0.0011
    """
    if candidates is None or not all(isinstance(c, dict) for c in candidates):
        return float("nan")
    if not rows.any():
        return float("inf")
    chance = np.array([float(c.get(a, 0.0)) for a, c in zip(arm, candidates)])[rows]
    chance = chance[chance > 0]
    if chance.size == 0:
        return 0.0
    return float((1.0 / chance).sum() ** 3 / (1.0 / chance**2).sum() ** 2)


def off_policy_values(
    logged_arm,
    propensity,
    outcome,
    target_arm,
    *,
    control: str = "none",
    dr_scores: pd.DataFrame | None = None,
    alpha: float = 0.1,
    candidates=None,
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
    candidates : sequence of set or dict, optional
        Per row, the arms the log could have served there (positive logged probability), or
        None where unknown; counted in ``unmeasured`` (see :func:`unservable`). Given as dicts
        of every candidate's logged probability on every row, they also give ``tail_rows`` as
        expected rather than as counted (see the module's docstring).

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
    contrast = target_arm != control
    unmeasured = int(
        (
            contrast
            & (
                unservable(logged_arm, p, target_arm, candidates)
                | unservable(logged_arm, p, np.full(n, control, dtype=object), candidates)
            )
        ).sum()
    )
    # the fewer of the policy's and usual care's rows the weights' spread rests on, where
    # they differ (elsewhere the contrast is 0 whatever was served)
    tail = min(
        _tail_rows(target_arm, contrast, candidates),
        _tail_rows(np.full(n, control, dtype=object), contrast, candidates),
    )
    # an arm the contrast needs that no row was served: the weights know nothing of it
    unlogged = contrast.any() and not set(target_arm[contrast]) | {control} <= set(logged_arm)
    out = {}
    if unlogged:
        out["ips"] = _not_given("ips", n, effective, unmeasured, tail)
        out["snips"] = _not_given("snips", n, effective, unmeasured, tail)
    else:
        gain = (follows - usual) * y
        out["ips"] = _interval("ips", gain, gain.mean(), alpha, effective, unmeasured, tail)
        if follows.sum() > 0 and usual.sum() > 0:
            v1 = float((follows * y).sum() / follows.sum())
            v0 = float((usual * y).sum() / usual.sum())
            influence = follows * (y - v1) / follows.mean() - usual * (y - v0) / usual.mean()
            out["snips"] = _interval(
                "snips", influence, v1 - v0, alpha, effective, unmeasured, tail
            )
        else:
            out["snips"] = _not_given("snips", n, effective, unmeasured, tail)
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
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            shown = ", ".join(str(int(i)) for i in bad[:5]) + (", ..." if bad.size > 5 else "")
            raise InputError(
                f"dr_scores: {bad.size} of {n} rows have no finite score for the evaluated "
                f"policy's arm or usual care (NaN or infinite, at rows {shown}); only finite "
                "scores are accepted, so no doubly robust value is given"
            )
        out["dr"] = _interval("dr", values, values.mean(), alpha, effective, unmeasured, tail)
    return {m: out[m] for m in OFF_POLICY_METHODS if m in out}
