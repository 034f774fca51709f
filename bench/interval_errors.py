"""What the interval rules read off a cohort's capture, per arm: the one-effect candidate's
held-out loss gap, the doubly robust estimate of the chosen effect's squared error, and the
bootstrap worlds' readings of what that estimate misses (``bench.interval_rules`` builds the
rules from these; ``bench.interval_passes`` records why each was tried)."""

from __future__ import annotations

import numpy as np

from bench.interval_capture import CohortCapture

__all__ = [
    "constant_gap",
    "gap_bound",
    "dr_error",
    "world_correction",
    "rival_ratio",
    "world_miss_spread",
    "gap_weighted_disagreement",
]


def constant_gap(c: CohortCapture) -> np.ndarray:
    """Per arm, the one-effect candidate's held-out loss minus the best personalized
    candidate's (0 where there is no such candidate or the gap is not finite)."""
    constant = np.flatnonzero(c.candidate_constant)
    if len(constant) == 0:
        return np.zeros(len(c.arms))
    gap = np.asarray(c.candidate_gap[constant[0]], float)
    return np.where(np.isfinite(gap), gap, 0.0)


def gap_bound(c: CohortCapture, z: float) -> np.ndarray:
    """Per arm, max(g + z se(g), 0) for the one-effect candidate's held-out loss gap g (0
    where there is no such candidate or g or se(g) is not finite)."""
    constant = np.flatnonzero(c.candidate_constant)
    if len(constant) == 0:
        return np.zeros(len(c.arms))
    gap = np.asarray(c.candidate_gap[constant[0]], float)
    se = np.asarray(c.candidate_gap_se[constant[0]], float)
    bound = gap + z * se
    return np.where(np.isfinite(bound), np.maximum(bound, 0.0), 0.0)


def dr_error(c: CohortCapture) -> tuple[np.ndarray, np.ndarray]:
    """Per arm, the doubly robust estimate of the chosen effect's mean squared error out of
    fold and its standard error.

    ψ − τ̂_oof = d + r, with d the cross-fitted plug-in μ_a − μ_0 minus τ̂_oof and r the
    residual term ±(y − μ_T)/e_T of a row that received the arm or control (0 otherwise).
    r² is the pseudo-outcome's own noise, so mean((ψ − τ̂_oof)² − r²) = mean(d² + 2 d r)
    estimates E[(τ − τ̂)²] (less second-order nuisance terms), and it cancels the noise row
    by row: its standard error, sd(d² + 2 d r) / √m, shrinks with d. Rows where the
    difference is not finite are left out; an arm with fewer than 3 rows gets (0, inf).
    """
    if c.codes is None:
        raise ValueError(
            f"{c.family} seed {c.seed}: the capture has no per-row noise fields (codes, y, mu,"
            " received); capture it again with this bench/interval_capture.py"
        )
    from recommender.uplift._intervals import dr_squared_error

    return dr_squared_error(c.pseudo, c.oof, c.codes, c.y, c.mu, c.received)


def world_correction(c: CohortCapture, how: str = "plugin") -> np.ndarray:
    """Per arm, what ``dr_error`` misses, E[δ²], read in the parametric bootstrap's world where
    the truth is known: "plugin", the world's cross-fitted plug-in's own mean squared error
    (E[δ*²] itself); "gap", the refitted effect's squared error out of fold minus the world's
    doubly robust estimate of it (what the estimate misses there, realised). Not finite: 0."""
    if c.world_plugin_mse is None:
        raise ValueError(
            f"{c.family} seed {c.seed}: the capture has no bootstrap-world fields"
            " (world_plugin_mse, world_oof_mse, world_dr); capture it again with this"
            " bench/interval_capture.py"
        )
    if how == "plugin":
        correction = np.asarray(c.world_plugin_mse, float)
    elif how == "gap":
        correction = np.asarray(c.world_oof_mse, float) - np.asarray(c.world_dr, float)
    else:
        raise ValueError(f"how must be 'plugin' or 'gap', not {how!r}")
    return np.where(np.isfinite(correction), correction, 0.0)


def rival_ratio(c: CohortCapture) -> np.ndarray:
    """Per arm, the bootstrap's ratio of squared error to jackknife variance in the world
    whose truth is the arm's rival effect (``bench.interval_capture.rivals``); NaN for an arm
    with no rival (or a ratio that is not finite)."""
    if c.rival is None:
        raise ValueError(
            f"{c.family} seed {c.seed}: the capture has no rival-world fields (rival,"
            " rival_mse, rival_jackknife_variance); capture it again with this"
            " bench/interval_capture.py"
        )
    ratio = np.asarray(c.rival_mse, float) / np.maximum(
        np.asarray(c.rival_jackknife_variance, float), 1e-12
    )
    return np.where((np.asarray(c.rival) >= 0) & np.isfinite(ratio), ratio, np.nan)


def world_miss_spread(c: CohortCapture) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per arm, κ̄* (what the DR estimate misses, averaged over the bootstrap's worlds: the
    ``world_correction`` "gap"), its standard error from the spread between the replicates
    (sd with ddof 1 over √R; NaN with one replicate) and its standard error from the spread
    over each world's rows (√(mean of the worlds' squared row-level errors / R))."""
    if c.replicate_oof_mse is None:
        raise ValueError(
            f"{c.family} seed {c.seed}: the capture has no per-replicate world fields"
            " (replicate_oof_mse, replicate_dr, replicate_miss_se); capture it again with this"
            " bench/interval_capture.py"
        )
    kappa = np.asarray(c.replicate_oof_mse, float) - np.asarray(c.replicate_dr, float)
    replicates = len(kappa)
    between = (
        kappa.std(axis=0, ddof=1) / np.sqrt(replicates)
        if replicates > 1
        else np.full(kappa.shape[1], np.nan)
    )
    rows = np.sqrt((np.asarray(c.replicate_miss_se, float) ** 2).mean(axis=0) / replicates)
    return kappa.mean(axis=0), between, rows


def gap_weighted_disagreement(c: CohortCapture) -> np.ndarray:
    """Per arm, the plausible candidates' distance from the chosen effect, each weighted by
    how much better its held-out loss gap fits "the truth is this candidate" than "the truth is
    the chosen effect" (the twelfth look, after the eleventh pass; not a lead).

    For a plausible candidate k (personalized, not clearly worse than the best personalized
    one, as ``_auto.select_learner`` decides), d_k its mean squared distance from the chosen
    effect out of fold and g_k = mean((ψ − f_k)² − (ψ − f_chosen)²) with standard error s_k:
    out of fold the pseudo-outcome's noise is independent of both effects, so g_k has mean
    +d_k if the truth is the chosen effect and −d_k if it is f_k. With equal prior odds the
    weight of "the truth is f_k" is w_k = 1 / (1 + exp(2 g_k d_k / s_k²)), ½ at g_k = 0, which is
    the shipped ``DISAGREEMENT_WEIGHT``. Returns mean_k w_k d_k (0 for an arm with no
    personalized candidate); rows where a difference is not finite are left out.
    """
    from recommender.uplift._auto import ENSEMBLE_Z

    out = np.zeros(len(c.arms))
    for j in range(len(c.arms)):
        psi, chosen = c.pseudo[:, j], c.oof[:, j]
        personalized = [
            k
            for k in range(len(c.candidate_constant))
            if not c.candidate_constant[k] and np.isfinite(c.candidate_loss[k, j])
        ]
        if not personalized:
            continue
        best = min(personalized, key=lambda k: c.candidate_loss[k, j])
        best_squared = (psi - c.candidate_oof[best, :, j]) ** 2
        weighted = []
        for k in personalized:
            effect = c.candidate_oof[k, :, j]
            against_best = (psi - effect) ** 2 - best_squared
            ok = np.isfinite(against_best)
            spread = against_best[ok].std(ddof=1) / np.sqrt(ok.sum())
            if against_best[ok].mean() > ENSEMBLE_Z * spread:
                continue  # clearly worse than the best: not plausible
            gap = (psi - effect) ** 2 - (psi - chosen) ** 2
            ok = np.isfinite(gap)
            g, s = gap[ok].mean(), gap[ok].std(ddof=1) / np.sqrt(ok.sum())
            d = float(np.mean((effect[ok] - chosen[ok]) ** 2))
            odds = np.clip(2 * g * d / max(s**2, 1e-300), -50.0, 50.0)
            weighted.append(d / (1.0 + np.exp(odds)))
        out[j] = float(np.mean(weighted)) if weighted else 0.0
    return out
