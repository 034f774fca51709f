"""What the calibration studies measure on a simulated cohort: each function returns a
``measure(frame) -> float`` that the :class:`~recommender.simulate.Study` list names.

Changes are follow-up minus baseline; a net change is the mean change under an arm minus under
usual care (``none``); ``arm="any"`` pools every non-control arm present.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "HIGH_EE",
    "HIGH_DP",
    "mean",
    "sd",
    "corr",
    "share_high",
    "share_burnout",
    "net_change",
    "smd",
    "net_share_change",
    "treated_change",
    "treated_share_change",
    "high_ee",
    "high_burnout",
    "control_change_mean",
    "control_change_sd",
    "control_share_change",
    "control_regression_slope",
    "women_minus_men",
    "hours_odds_ratio",
    "role_difference",
    "control_share_of_gap",
]

HIGH_EE = 27  # MBI-HSS cut-offs used by the cited studies: EE >= 27, DP >= 10
HIGH_DP = 10


def _change(frame: pd.DataFrame, score: str) -> np.ndarray:
    return (frame[f"{score}_followup"] - frame[score]).to_numpy(float)


def _arm_mask(frame: pd.DataFrame, arm: str) -> np.ndarray:
    """Rows that received ``arm``; ``"any"`` means any non-control arm."""
    received = frame["intervention"].astype(str).to_numpy()
    return received != "none" if arm == "any" else received == arm


def _burnout(ee, dp) -> np.ndarray:
    return (np.asarray(ee) >= HIGH_EE) | (np.asarray(dp) >= HIGH_DP)


def mean(column: str):
    return lambda f: float(f[column].mean())


def sd(column: str):
    return lambda f: float(f[column].std())


def corr(a: str, b: str):
    return lambda f: float(np.corrcoef(f[a], f[b])[0, 1])


def share_high(score: str, cut: int):
    return lambda f: float((f[score] >= cut).mean() * 100)


def share_burnout(f):
    return float(_burnout(f["ee"], f["dp"]).mean() * 100)


def net_change(score: str, arm: str):
    """Mean change under ``arm`` minus mean change under usual care (points)."""

    def measure(f):
        change = _change(f, score)
        return float(change[_arm_mask(f, arm)].mean() - change[_arm_mask(f, "none")].mean())

    return measure


def smd(score: str, arm: str):
    """Net change over the pooled SD of the follow-up scores (Hedges-style SMD on post scores)."""

    def measure(f):
        treated, control = _arm_mask(f, arm), _arm_mask(f, "none")
        followup = f[f"{score}_followup"].to_numpy(float)
        pooled = np.sqrt((followup[treated].var(ddof=1) + followup[control].var(ddof=1)) / 2)
        return net_change(score, arm)(f) / pooled

    return measure


def _share_change(f, mask, high) -> float:
    return float((high(f, "_followup")[mask].mean() - high(f, "")[mask].mean()) * 100)


def high_ee(f, suffix):
    return f[f"ee{suffix}"].to_numpy() >= HIGH_EE


def high_burnout(f, suffix):
    return _burnout(f[f"ee{suffix}"], f[f"dp{suffix}"])


def net_share_change(arm: str, high=high_ee):
    """Change in the share above the cut-off under ``arm`` minus under usual care (points)."""
    return lambda f: (
        _share_change(f, _arm_mask(f, arm), high) - _share_change(f, _arm_mask(f, "none"), high)
    )


def treated_change(score: str, arm: str):
    """Mean pre-post change under ``arm`` alone, usual care not subtracted (points)."""
    return lambda f: float(_change(f, score)[_arm_mask(f, arm)].mean())


def treated_share_change(arm: str, high=high_ee):
    """Pre-post change in the share above the cut-off under ``arm`` alone (points)."""
    return lambda f: _share_change(f, _arm_mask(f, arm), high)


def control_change_mean(score: str):
    return lambda f: float(_change(f, score)[_arm_mask(f, "none")].mean())


def control_change_sd(score: str):
    return lambda f: float(_change(f, score)[_arm_mask(f, "none")].std(ddof=1))


def control_share_change(high=high_ee):
    return lambda f: _share_change(f, _arm_mask(f, "none"), high)


def control_regression_slope(f):
    """Slope of the usual-care EE change on baseline EE (negative: extremes move back)."""
    control = _arm_mask(f, "none")
    baseline, change = f["ee"].to_numpy(float)[control], _change(f, "ee")[control]
    return float(np.cov(baseline, change)[0, 1] / baseline.var(ddof=1))


def women_minus_men(f):
    gender = f["gender"].astype(str)
    return float(f["ee"][gender == "female"].mean() - f["ee"][gender == "male"].mean())


def hours_odds_ratio(f):
    """Odds ratio of burnout (EE >= 27 or DP >= 10) for > 40 versus <= 40 weekly hours."""
    burnout = _burnout(f["ee"], f["dp"])
    long_hours = f["weekly_hours"].to_numpy() > 40
    p1, p0 = burnout[long_hours].mean(), burnout[~long_hours].mean()
    return float(p1 / (1 - p1) / (p0 / (1 - p0)))


def role_difference(measure, first: str, second: str):
    """A measure in role ``first`` minus the same in role ``second``."""

    def difference(f):
        role = f["role"].astype(str).to_numpy()
        return measure(f[role == first]) - measure(f[role == second])

    return difference


def control_share_of_gap(arm: str):
    """How much of the between-arm gap in mean EE change comes from usual care worsening."""

    def measure(f):
        # The gap is control change minus arm change, i.e. minus the net change.
        return control_change_mean("ee")(f) / -net_change("ee", arm)(f)

    return measure
