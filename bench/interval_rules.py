"""The interval rules replayed on captured cohorts, by name (``RULES``).

A rule maps one cohort's capture (``bench.interval_capture``) to a per-arm variance scale and
a per-arm extra variance (and may set the average-effect floor too); ``bench.interval_scoring``
turns it into intervals and scores them. Each pass's rule, its lead and its bar are recorded,
as fixed before scoring, in ``bench.interval_passes``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bench.interval_capture import CohortCapture
from bench.interval_errors import (
    constant_gap,
    dr_error,
    gap_bound,
    gap_weighted_disagreement,
    rival_ratio,
    world_correction,
    world_miss_spread,
)
from bench.interval_passes import (
    DR_FLOOR_HOW,
    DR_FLOOR_Z,
    GAP_Z,
    WORLD_FLOOR_HOW,
    WORLD_FLOOR_Z,
)

__all__ = ["Rule", "RULES", "shipped", "fifth_pass"]

# (scale, extra) per arm, or (scale, extra, floor): a rule may set the average-effect floor too
Rule = Callable[[CohortCapture], tuple[np.ndarray, ...]]


def _weight() -> float:
    from recommender.uplift._intervals import DISAGREEMENT_WEIGHT

    return DISAGREEMENT_WEIGHT


def _third_pass_extra(c: CohortCapture, scale):
    """The extra variance of the rule shipped from the third to the fifth pass: the larger of
    the undetected spread (times the scale) and ½ disagreement, plus the whole held-out bias
    of unclipped residuals."""
    from recommender.uplift._intervals import held_out_bias

    bias = held_out_bias(c.pseudo, c.oof, c.ranking_oof, winsorize=None)
    return np.maximum(c.undetected_variance * scale, _weight() * c.disagreement_variance) + bias


def _fifth_pass_extra(c: CohortCapture, scale):
    """The library's extra variance (``_intervals.extra_variance``) for a given scale."""
    from recommender.uplift._intervals import extra_variance, held_out_bias_terms

    average, slope = held_out_bias_terms(c.pseudo, c.oof, c.ranking_oof)
    return extra_variance(
        undetected=c.undetected_variance,
        scale=scale,
        disagreement=c.disagreement_variance,
        bias_average=average,
        bias_slope=slope,
    )


def fifth_pass(c: CohortCapture):
    """The rule ``UpliftModel`` shipped from the fifth to the tenth pass (the fourth pass's
    lead a); the tenth pass's ``shipped`` adds its error floor where the worlds agree."""
    return c.interval_scale, _fifth_pass_extra(c, c.interval_scale)


def third_pass(c: CohortCapture):
    return c.interval_scale, _third_pass_extra(c, c.interval_scale)


def lead_b(c: CohortCapture):
    """The third pass's rule with the scale allowed below 1 (as fixed before scoring)."""
    return c.raw_scale, _third_pass_extra(c, c.raw_scale)


def lead_ab(c: CohortCapture):
    return c.raw_scale, _fifth_pass_extra(c, c.raw_scale)


def held_out_gap(c: CohortCapture):
    """The sixth pass's lead (``bench.interval_passes``): an arm given one effect for everyone adds the
    larger of the slope term and the held-out loss gap, then the average term."""
    from recommender.uplift._intervals import held_out_bias_terms

    average, slope = held_out_bias_terms(c.pseudo, c.oof, c.ranking_oof)
    shipped_extra = _fifth_pass_extra(c, c.interval_scale)
    one_effect = np.maximum(slope, np.maximum(constant_gap(c), 0.0)) + average
    return c.interval_scale, np.where(c.undetected_variance > 0, one_effect, shipped_extra)


def gap_upper_rule(z: float) -> Rule:
    """The seventh pass's lead for a given z (``bench.interval_passes``): an arm given one effect for
    everyone adds max(½ disagreement, slope term, max(g + z se(g), 0)) + average term."""

    def rule(c: CohortCapture):
        from recommender.uplift._intervals import held_out_bias_terms

        average, slope = held_out_bias_terms(c.pseudo, c.oof, c.ranking_oof)
        shared = _weight() * np.asarray(c.disagreement_variance, float)
        one_effect = np.maximum.reduce([shared, slope, gap_bound(c, z)]) + average
        shipped_extra = _fifth_pass_extra(c, c.interval_scale)
        return c.interval_scale, np.where(c.undetected_variance > 0, one_effect, shipped_extra)

    return rule


def gap_upper(c: CohortCapture):
    """The seventh pass's lead with ``GAP_Z``."""
    return gap_upper_rule(GAP_Z)(c)


def dr_floor_rule(z: float, how: str = "person") -> Rule:
    """The shipped rule with the variance floored at the lower bound F = max(MSE − z se, 0)
    of the doubly robust estimate of the arm's squared error (``dr_error``; not finite: 0).

    ``how``: "person", every person's variance of the arm at least F (the rule returns the
    floor that ``combine`` needs for that: max(average-effect floor, F − extra)); "arm", the
    arm's typical variance (its training jackknife's typical variance through the shipped
    rule) topped up to F, the difference added to every person's variance.
    """
    if how not in ("person", "arm"):
        raise ValueError(f"how must be 'person' or 'arm', not {how!r}")

    def rule(c: CohortCapture):
        scale, extra = fifth_pass(c)
        mse, se = dr_error(c)
        bound = mse - z * se
        floor_total = np.where(np.isfinite(bound), np.maximum(bound, 0.0), 0.0)
        if how == "person":
            return scale, extra, np.maximum(c.variance_floor, floor_total - extra)
        typical = np.maximum(c.typical_variance * scale, c.variance_floor) + extra
        return scale, extra + np.maximum(floor_total - typical, 0.0)

    return rule


def dr_floor(c: CohortCapture):
    """The eighth pass's lead with ``DR_FLOOR_Z`` and ``DR_FLOOR_HOW``."""
    return dr_floor_rule(DR_FLOOR_Z, DR_FLOOR_HOW)(c)


def world_floor_rule(z: float, how: str = "plugin") -> Rule:
    """The shipped rule with every person's variance of an arm at least
    F = max(MSE + κ − z se, 0): ``dr_error``'s estimate (MSE, se) corrected by the bootstrap
    world's reading of the plug-in's error κ (``world_correction``). Not finite: no floor."""

    def rule(c: CohortCapture):
        scale, extra = fifth_pass(c)
        mse, se = dr_error(c)
        bound = mse + world_correction(c, how) - z * se
        floor_total = np.where(np.isfinite(bound), np.maximum(bound, 0.0), 0.0)
        return scale, extra, np.maximum(c.variance_floor, floor_total - extra)

    return rule


def rival_scale_rule(how: str = "max", rougher: bool = False, replaces: bool = False) -> Rule:
    """The shipped rule with a personalized arm's variance scale read also in the world whose
    truth is its rival's effect: "max", the larger of the shipped scale and the rival world's
    ratio; "mean", the mean of the shipped world's raw ratio and the rival world's, floored at
    1. ``rougher``: only where the rival's out-of-fold effect spreads more than the chosen
    one's. Arms with no rival (and arms given one effect for everyone) keep the shipped scale;
    the extra variance is the shipped rule's, except with ``replaces``: the rival world's
    error already holds the distance between the chosen effect and a plausible candidate, so
    an arm whose scale it sets no longer adds ½ disagreement (no double count)."""
    if how not in ("max", "mean"):
        raise ValueError(f"how must be 'max' or 'mean', not {how!r}")

    def rule(c: CohortCapture):
        ratio = rival_ratio(c)
        if rougher:
            idx = np.asarray(c.rival)
            for j, r in enumerate(idx):
                if r >= 0 and c.candidate_oof[r, :, j].var() <= c.oof[:, j].var():
                    ratio[j] = np.nan
        if how == "max":
            candidate = np.maximum(c.interval_scale, ratio)
        else:
            candidate = np.maximum((c.raw_scale + ratio) / 2, 1.0)
        scale = np.where(np.isfinite(ratio), candidate, c.interval_scale)
        if not replaces:
            return scale, _fifth_pass_extra(c, c.interval_scale)
        from recommender.uplift._intervals import extra_variance, held_out_bias_terms

        average, slope = held_out_bias_terms(c.pseudo, c.oof, c.ranking_oof)
        extra = extra_variance(
            undetected=c.undetected_variance,
            scale=c.interval_scale,
            disagreement=np.where(np.isfinite(ratio), 0.0, c.disagreement_variance),
            bias_average=average,
            bias_slope=slope,
        )
        return scale, extra

    return rule


def world_floor(c: CohortCapture):
    """The ninth pass's lead with ``WORLD_FLOOR_Z`` and ``WORLD_FLOOR_HOW``."""
    return world_floor_rule(WORLD_FLOOR_Z, WORLD_FLOOR_HOW)(c)


def rival_max(c: CohortCapture):
    """The ninth pass's runner-up, reported only: the larger of the shipped scale and the
    rival world's ratio."""
    return rival_scale_rule("max")(c)


def stable_floor_rule(
    spread: str = "between",
    z: float = 0.0,
    gate: float | None = 1.0,
    distinct: float | None = None,
) -> Rule:
    """The ninth pass's world floor F = max(D + κ̄* − z se(F), 0), se(F)² = se(D)² + se(κ̄*)²,
    read only where the correction is stable. ``gate`` g: the floor applies to an arm only if
    se(κ̄*) ≤ g se(D) (None: no such gate). ``distinct`` t: only if D + κ̄* ≥ t se(F), the
    floor told apart from 0 (None: no such gate). ``spread``: which standard error of κ̄*
    (``world_miss_spread``): "between" the replicates (one replicate: not known, so no floor
    under ``gate`` and the row-level one in se(F)), "rows" within each world, or "max" of the
    two."""
    if spread not in ("between", "rows", "max"):
        raise ValueError(f"spread must be 'between', 'rows' or 'max', not {spread!r}")

    def rule(c: CohortCapture):
        scale, extra = fifth_pass(c)
        mse, se = dr_error(c)
        kappa, between, rows = world_miss_spread(c)
        if spread == "between":
            se_kappa = between
        elif spread == "rows":
            se_kappa = rows
        else:
            se_kappa = np.fmax(between, rows)
        se_floor = np.sqrt(se**2 + np.where(np.isfinite(se_kappa), se_kappa, rows) ** 2)
        bound = mse + kappa - z * se_floor
        floor_total = np.where(np.isfinite(bound), np.maximum(bound, 0.0), 0.0)
        if gate is not None:
            floor_total = np.where(se_kappa <= gate * se, floor_total, 0.0)
        if distinct is not None:
            floor_total = np.where(mse + kappa >= distinct * se_floor, floor_total, 0.0)
        return scale, extra, np.maximum(c.variance_floor, floor_total - extra)

    return rule


def stable_floor(c: CohortCapture):
    """The tenth pass's lead (``bench.interval_passes``): the world floor where its reading is steady."""
    return stable_floor_rule("between", 0.0, 1.0, 2.0)(c)


def larger_extra(c: CohortCapture):
    """The eleventh pass's lead (``bench.interval_passes``): the shipped rule, except that a
    personalized arm adds the larger of ½ disagreement and the held-out slope term, not their
    sum (then the average term), as an arm given one effect for everyone already takes the
    largest of its three measures of one spread. The error floor F is the library's
    (``_intervals.error_floor``), every person's whole variance at least F, as shipped."""
    from recommender.uplift._intervals import error_floor, held_out_bias_terms

    average, slope = held_out_bias_terms(c.pseudo, c.oof, c.ranking_oof)
    shared = _weight() * np.asarray(c.disagreement_variance, float)
    _, one_effect_extra = fifth_pass(c)
    extra = np.where(
        c.undetected_variance > 0, one_effect_extra, np.maximum(shared, slope) + average
    )
    mse, se = dr_error(c)
    world_miss = np.asarray(c.replicate_oof_mse, float) - np.asarray(c.replicate_dr, float)
    floor_total = error_floor(mse, se, world_miss)
    return c.interval_scale, extra, np.maximum(c.variance_floor, floor_total - extra)


def world_net_rule(average: bool = False, z: float | None = None) -> Rule:
    """The shipped rule with a personalized arm's held-out slope term net of what the
    bootstrap's worlds read for it: max(slope − mean over the replicates of the world's
    slope term, 0) (``replicate_bias_slope``); with ``average`` the average term likewise.
    The world plants the fitted effect, so the shrinkage and offset it reproduces are already
    in its ratio, the variance scale; only the excess is bias the world cannot show. ``z``:
    net of the world's mean minus z of its standard error between the replicates (one
    replicate: not known, nothing taken off). Arms given one effect for everyone, the
    disagreement, the scale and the floors as shipped."""

    def rule(c: CohortCapture):
        from recommender.uplift._intervals import error_floor, held_out_bias_terms

        if c.replicate_bias_slope is None:
            raise ValueError(
                f"{c.family} seed {c.seed}: the capture has no world bias fields"
                " (replicate_bias_slope, replicate_bias_average); capture it again with this"
                " bench/interval_capture.py"
            )
        average_term, slope = held_out_bias_terms(c.pseudo, c.oof, c.ranking_oof)

        def world(terms):
            terms = np.asarray(terms, float)
            if z is None:
                return terms.mean(axis=0)
            if len(terms) < 2:
                return np.zeros(terms.shape[1])
            return terms.mean(axis=0) - z * terms.std(axis=0, ddof=1) / np.sqrt(len(terms))

        net_slope = np.maximum(slope - world(c.replicate_bias_slope), 0.0)
        net_average = (
            np.maximum(average_term - world(c.replicate_bias_average), 0.0)
            if average
            else average_term
        )
        shared = _weight() * np.asarray(c.disagreement_variance, float)
        _, one_effect_extra = fifth_pass(c)
        extra = np.where(
            c.undetected_variance > 0, one_effect_extra, shared + net_slope + net_average
        )
        mse, se = dr_error(c)
        world_miss = np.asarray(c.replicate_oof_mse, float) - np.asarray(c.replicate_dr, float)
        floor_total = error_floor(mse, se, world_miss)
        return c.interval_scale, extra, np.maximum(c.variance_floor, floor_total - extra)

    return rule


def gap_weighted(c: CohortCapture):
    """The twelfth look (after the eleventh pass; no lead): the shipped rule with ½ disagreement
    replaced by each plausible candidate's distance weighted by its held-out loss gap
    (``gap_weighted_disagreement``), for personalized arms and, inside the largest of three,
    for arms given one effect for everyone. The error floor F as shipped, every person's
    whole variance at least F."""
    from recommender.uplift._intervals import error_floor, held_out_bias_terms

    average, slope = held_out_bias_terms(c.pseudo, c.oof, c.ranking_oof)
    shared = gap_weighted_disagreement(c)
    undetected = c.undetected_variance * c.interval_scale
    extra = (
        np.where(
            c.undetected_variance > 0,
            np.maximum.reduce([undetected, shared, slope]),
            shared + slope,
        )
        + average
    )
    mse, se = dr_error(c)
    world_miss = np.asarray(c.replicate_oof_mse, float) - np.asarray(c.replicate_dr, float)
    floor_total = error_floor(mse, se, world_miss)
    return c.interval_scale, extra, np.maximum(c.variance_floor, floor_total - extra)


def shipped(c: CohortCapture):
    """The rule ``UpliftModel`` ships (since the tenth pass: ``stable-floor``, the library's
    ``_intervals.error_floor``). A capture made before its fields (the per-row noise, the
    per-replicate worlds) was fitted without the floor: ``fifth_pass``."""
    if c.codes is None or c.replicate_oof_mse is None:
        return fifth_pass(c)
    return stable_floor(c)


RULES: dict[str, Rule] = {
    "third-pass": third_pass,
    "fifth-pass": fifth_pass,
    "shipped": shipped,
    "lead-b": lead_b,
    "lead-a+b": lead_ab,
    "held-out-gap": held_out_gap,
    "gap-upper": gap_upper,
    "dr-floor": dr_floor,
    "world-floor": world_floor,
    "rival-max": rival_max,
    "stable-floor": stable_floor,
    "larger-extra": larger_extra,
    "world-net-slope": world_net_rule(),
    "world-net-both": world_net_rule(average=True),
    "world-net-slope-z1": world_net_rule(z=1.0),
    "gap-weighted": gap_weighted,
}
