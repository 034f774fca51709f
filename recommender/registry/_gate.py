"""The promotion gate: is a challenger's policy value not worse than the champion's?

Both policies are valued on the same held-out rows with the same doubly robust scores, so the
comparison is paired: the per-person difference of the two policies' values has a much smaller
variance than either value, and a challenger that recommends the same arms as the champion
differs from it by exactly 0. The challenger fails only when the whole ``1 - alpha`` interval of
that difference lies below 0.

Where the log could not have served one of the two arms on a row (a greedy answer, an arm
outside the row's exploration candidates), the doubly robust difference there is the outcome
model's extrapolation, not a measurement: on simulated programs it leaned towards the
challenger (the challenger picks those arms because models like the outcome model rate them
highly), and an interval mixing it in covered the true difference in 70 % of repeats. The gate
therefore judges the difference on the rows the log measures, counting the others as 0, and
gives the outcome model's figure for them apart, as a guess; it also fails a challenger that
figure puts wholly below 0 together with the measured part.

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
        Challenger minus champion, paired, on the rows the log measures: rows where the log
        could not have served one of the two arms count 0 (their figure is ``extrapolated``).
    champion_version : str or None
    extrapolated : PolicyValue or None
        The outcome model's figure for the rows the log could not measure, per compared row
        (so ``difference + extrapolated`` is the whole doubly robust difference): a guess, not
        a measurement. ``None`` when every row where the policies differ is measured.
    """

    passed: bool
    reason: str
    alpha: float
    challenger: PolicyValue
    champion: PolicyValue | None = None
    difference: PolicyValue | None = None
    champion_version: str | None = None
    extrapolated: PolicyValue | None = None

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "alpha": self.alpha,
            "challenger": self.challenger.to_dict(),
            "champion": self.champion.to_dict() if self.champion else None,
            "difference": self.difference.to_dict() if self.difference else None,
            "champion_version": self.champion_version,
            "extrapolated": self.extrapolated.to_dict() if self.extrapolated else None,
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
            f"{what}: {rows.size:,} of {values.size:,} scores are not finite numbers "
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
    promote it). When on some, the difference is judged on the rows the log measures (the
    others count 0), the outcome model's figure for the others is given apart
    (``extrapolated``), and the challenger also fails when the two together lie wholly below 0.

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
            f"the champion was valued on {len(champion_values):,} rows and the "
            f"challenger on {challenger.n:,}; the gate compares the same rows"
        )
    champion = estimate(champion_values, alpha=alpha)
    level = f"{100 * (1 - alpha):.0f}%"
    who = f"champion version {champion_version}" if champion_version else "the champion"
    paired = challenger_values - champion_values
    guessed = _unmeasured_mask(differs, unmeasured, challenger.n)
    if guessed is None:
        difference, extrapolated, caveat = estimate(paired, alpha=alpha), None, ""
    else:
        difference = estimate(np.where(guessed, 0.0, paired), alpha=alpha)
        extrapolated = estimate(np.where(guessed, paired, 0.0), alpha=alpha)
        apart = int(np.count_nonzero(np.asarray(differs, dtype=bool)))
        where = (
            f"on {int(guessed.sum()):,} of the {apart:,} rows where it serves another arm than "
            f"{who}, the log could not have served one of the two arms (the row was served "
            "another arm with probability 1, the arm was not among the row's exploration "
            "candidates, or it was not served on the rows compared)"
        )
        guess = (
            "the outcome model alone puts the difference there (challenger minus champion; "
            f"above 0 favours the challenger) at {extrapolated.estimate:.3f} points over the "
            f"{extrapolated.n:,} rows ({level} CI "
            f"{extrapolated.lower:.3f} to {extrapolated.upper:.3f}): an extrapolation, not a measurement"
        )
        caveat = (
            f"; {where}: the difference counts them 0 (the policy values include them), and {guess}"
        )
    decided = dict(
        alpha=alpha,
        challenger=challenger,
        champion=champion,
        difference=difference,
        champion_version=champion_version,
        extrapolated=extrapolated,
    )
    if guessed is not None and int(guessed.sum()) == apart:
        reason = (
            f"the log cannot measure how the challenger differs from {who}: {where}; {guess}. "
            "It stays challenger: serve with exploration on (exploration: in serve.yaml) so "
            "the log can measure it, or a person promotes it after review "
            "(`recommender promote VERSION --force`)"
        )
        return GateDecision(False, reason, **decided)
    measured = "" if guessed is None else " where the log measures it"
    figures = _figures(challenger, champion, difference, level, measured)
    held = f"on {difference.n:,} held-out rows{_HELD_OUT}{caveat}"
    if difference.upper < 0:
        return GateDecision(False, f"worse than {who}: {figures} lies below 0, {held}", **decided)
    whole = estimate(paired, alpha=alpha)
    if whole.upper < 0:
        # Only reachable with rows the log cannot measure: the outcome model's figure for them
        # drags the whole difference below 0.
        reason = (
            f"worse than {who} once the rows the log cannot measure are added: {figures} "
            "reaches 0 or above, but with the outcome model's figure for the other rows the "
            f"difference is {whole.estimate:.3f} ({level} CI {whole.lower:.3f} to "
            f"{whole.upper:.3f}), below 0, {held}"
        )
        return GateDecision(False, reason, **decided)
    return GateDecision(
        True, f"not worse than {who}: {figures} reaches 0 or above, {held}", **decided
    )


def _figures(challenger, champion, difference, level: str, measured: str) -> str:
    """``policy value X vs Y points, difference D<measured> (CI)``, said alike in every reason.

    The values are points better than usual care (EE avoided), so of the opposite sign to the
    off-policy figures printed beside them ("-5.58 EE points vs usual care"): said in the
    reason, or a lead reads a value that flips sign from one line to the next."""
    return (
        f"policy value (points better than usual care per person; higher is better) "
        f"{challenger.estimate:.3f} vs {champion.estimate:.3f} points, difference"
        f"{measured} {difference.estimate:.3f} ({level} CI {difference.lower:.3f} to "
        f"{difference.upper:.3f})"
    )


def _unmeasured_mask(differs, unmeasured, n: int) -> np.ndarray | None:
    """The rows where the policies differ that the log could not have served both arms on, or
    None when there is none (or nothing was said about it)."""
    if differs is None or unmeasured is None:
        return None
    differs = np.asarray(differs, dtype=bool)
    unmeasured = np.asarray(unmeasured, dtype=bool)
    if len(differs) != n or len(unmeasured) != n:
        raise InputError(
            f"differs and unmeasured have {len(differs):,} and {len(unmeasured):,} entries for "
            f"{n:,} compared rows; the gate needs one per row"
        )
    guessed = unmeasured & differs
    return guessed if guessed.any() else None
