"""The promotion gate: is a challenger's policy value not worse than the champion's?

Both policies are valued on the same held-out rows with the same doubly robust scores, so the
comparison is paired: the per-person difference of the two policies' values has a much smaller
variance than either value, and a challenger that recommends the same arms as the champion
differs from it by exactly 0. The challenger fails only when the whole ``1 - alpha`` interval of
that difference lies below 0.

The scores and intervals are :mod:`recommender.evaluation`'s own, so the gate's figure for a
policy is the one the evaluation report and the model card show.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from recommender.errors import InputError

__all__ = ["PolicyValue", "GateDecision", "policy_value_scores", "estimate", "gate_decision"]


@dataclass(frozen=True)
class PolicyValue:
    """A mean with its two-sided ``1 - alpha`` normal interval."""

    estimate: float
    lower: float
    upper: float
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GateDecision:
    """Outcome of the gate for one challenger.

    Attributes
    ----------
    passed : bool
        True when the challenger may become champion.
    reason : str
        One plain sentence saying why.
    alpha : float
        Intervals are two-sided ``1 - alpha``.
    challenger : PolicyValue
        The challenger's policy value (points avoided per person versus usual care for all).
    champion : PolicyValue or None
        The champion's, on the same rows; ``None`` when there was no champion.
    difference : PolicyValue or None
        Challenger minus champion, paired.
    champion_version : str or None
    """

    passed: bool
    reason: str
    alpha: float
    challenger: PolicyValue
    champion: PolicyValue | None = None
    difference: PolicyValue | None = None
    champion_version: str | None = None

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "alpha": self.alpha,
            "challenger": self.challenger.to_dict(),
            "champion": self.champion.to_dict() if self.champion else None,
            "difference": self.difference.to_dict() if self.difference else None,
            "champion_version": self.champion_version,
        }


def policy_value_scores(
    dr_scores: pd.DataFrame, recommended, *, control: str = "none", lower_is_better: bool = True
) -> np.ndarray:
    """Per-person doubly robust value of a policy, as outcome points gained versus control.

    Parameters
    ----------
    dr_scores : DataFrame
        Cross-fitted AIPW scores, one column per arm including ``control``.
    recommended : array-like of str
        The arm the policy assigns to each row.
    control : str, default "none"
    lower_is_better : bool, default True
        For exhaustion (EE, DP) a lower follow-up is better, so the value is
        ``score[control] - score[arm]``: points avoided. For PA pass False.

    Returns
    -------
    ndarray
        One value per row; its mean is the policy value.
    """
    # Imported here: scipy.stats, which the evaluation needs, would make importing the registry
    # take a second.
    from recommender.evaluation import policy_scores

    avoided = policy_scores(dr_scores, np.asarray(recommended, dtype=object), control=control)
    return avoided if lower_is_better else -avoided


def estimate(values, *, alpha: float = 0.1) -> PolicyValue:
    """Mean of ``values`` with a two-sided ``1 - alpha`` normal interval.

    The evaluation's :func:`~recommender.evaluation.mean_estimate`, refusing fewer than 2 rows
    (whose interval would be undefined) rather than valuing a policy on them.
    """
    from recommender.evaluation import mean_estimate

    values = _finite_scores(values, "policy values")
    if values.size < 2:
        raise InputError(f"need at least 2 rows to value a policy, got {values.size}")
    value = mean_estimate(values, alpha=alpha)
    return PolicyValue(value.estimate, value.lower, value.upper, value.n)


def _finite_scores(values, what: str) -> np.ndarray:
    """``values`` as floats, refusing NaN and infinities (a NaN interval would pass any gate)."""
    values = np.asarray(values, dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        rows = np.flatnonzero(bad.ravel())
        shown = ", ".join(str(int(i)) for i in rows[:5]) + (", ..." if rows.size > 5 else "")
        raise InputError(
            f"{what}: {rows.size} of {values.size} scores are not finite numbers "
            f"(NaN or infinite, at rows {shown}); only finite policy-value scores "
            "are accepted, so nothing is decided (the challenger is not promoted)"
        )
    return values


# What "held-out rows" are, said once where the count is given.
_HELD_OUT = (
    " (people of this run's data kept out of its training, and out of the champion's "
    "when it can tell; both models valued on the same rows)"
)


def gate_decision(
    challenger_values,
    champion_values=None,
    *,
    alpha: float = 0.1,
    champion_version: str | None = None,
    differs=None,
    unmeasured=None,
) -> GateDecision:
    """Decide whether a challenger may replace the champion.

    A difference is only measured where the log could have served both policies' arms. Where
    the two policies serve different arms on rows the log could not have served one of them
    (rows served with probability 1 to another arm, as in a greedy log; an arm the rows were
    never served), the doubly robust difference is the outcome model's extrapolation, with an
    interval as narrow as if it were measured. When that holds on every row where they differ,
    nothing about the difference was measured and the challenger fails (a person may still
    promote it); when on some, the reason says on how many.

    Parameters
    ----------
    challenger_values : array-like of float
        Per-person policy values of the challenger (see :func:`policy_value_scores`).
    champion_values : array-like of float, optional
        The champion's on the same rows, in the same order; ``None`` when there is no champion.
    alpha : float, default 0.1
    champion_version : str, optional
        Named in the reason.
    differs, unmeasured : array-like of bool, optional
        Per row (same order): the two policies serve different arms; and of those, the rows
        the log could not have served one of the two arms (see above).

    Returns
    -------
    GateDecision

    Examples
    --------
    >>> gate_decision([1.0, 2.0, 3.0]).passed
    True
    >>> gate_decision([0.0, 0.1, 0.0, 0.1], [2.0, 2.1, 2.0, 2.2], champion_version="1").passed
    False
    """
    challenger_values = _finite_scores(challenger_values, "the challenger's policy values")
    if champion_values is not None:
        champion_values = _finite_scores(champion_values, "the champion's policy values")
    challenger = estimate(challenger_values, alpha=alpha)
    if champion_values is None:
        return GateDecision(
            True, "there is no champion yet, so the first version passes", alpha, challenger
        )
    if len(champion_values) != challenger.n:
        raise InputError(
            f"the champion was valued on {len(champion_values)} rows and the "
            f"challenger on {challenger.n}; the gate compares the same rows"
        )
    champion = estimate(champion_values, alpha=alpha)
    difference = estimate(challenger_values - champion_values, alpha=alpha)
    level = f"{100 * (1 - alpha):.0f}%"
    who = f"champion version {champion_version}" if champion_version else "the champion"
    guessed = _unmeasured_note(differs, unmeasured, challenger.n, who)
    if guessed and not guessed[0]:
        reason = (
            f"the log cannot measure how the challenger differs from {who}: {guessed[1]}, so "
            f"the difference {difference.estimate:.3f} ({level} CI {difference.lower:.3f} to "
            f"{difference.upper:.3f}) is the outcome model's extrapolation, not a measurement. "
            "It stays challenger: serve with exploration on (exploration: in serve.yaml) so "
            "the log can measure it, or a person promotes it after review "
            "(`recommender promote VERSION --force`)"
        )
        return GateDecision(
            False, reason, alpha, challenger, champion, difference, champion_version
        )
    caveat = f"; {guessed[1]}, valued there by the outcome model alone" if guessed else ""
    if difference.upper < 0:
        reason = (
            f"worse than {who}: policy value {challenger.estimate:.3f} vs "
            f"{champion.estimate:.3f} points, difference {difference.estimate:.3f} "
            f"({level} CI {difference.lower:.3f} to {difference.upper:.3f}) lies below 0, "
            f"on {difference.n} held-out rows{_HELD_OUT}{caveat}"
        )
        return GateDecision(
            False, reason, alpha, challenger, champion, difference, champion_version
        )
    reason = (
        f"not worse than {who}: policy value {challenger.estimate:.3f} vs "
        f"{champion.estimate:.3f} points, difference {difference.estimate:.3f} "
        f"({level} CI {difference.lower:.3f} to {difference.upper:.3f}) reaches 0 or above, "
        f"on {difference.n} held-out rows{_HELD_OUT}{caveat}"
    )
    return GateDecision(True, reason, alpha, challenger, champion, difference, champion_version)


def _unmeasured_note(differs, unmeasured, n: int, who: str) -> tuple[int, str] | None:
    """``(rows where the policies differ that the log measures, what to say)``, or None when
    every row where they differ is measured (or nothing was said about it)."""
    if differs is None or unmeasured is None:
        return None
    differs = np.asarray(differs, dtype=bool)
    unmeasured = np.asarray(unmeasured, dtype=bool) & differs
    if len(differs) != n or len(unmeasured) != n:
        raise InputError(
            f"differs and unmeasured have {len(differs)} and {len(unmeasured)} entries for "
            f"{n} compared rows; the gate needs one per row"
        )
    guessed, apart = int(unmeasured.sum()), int(differs.sum())
    if not guessed:
        return None
    return apart - guessed, (
        f"on {guessed:,} of the {apart:,} rows where it serves another arm than {who}, the "
        "log could not have served one of the two arms (the row was served another arm with "
        "probability 1, or that arm was not served on the rows compared)"
    )
