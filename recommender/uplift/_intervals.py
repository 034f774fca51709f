"""Intervals for each person's effect: grouped jackknife, scaled by a parametric bootstrap.

Variance. Each of the K fold models is the learner's last stage refitted without one fold;
the delete-a-group jackknife turns their spread into a variance for the all-rows estimate,
V(x) = (K − 1) / K · Σ_k (τ̂_(k)(x) − τ̂_(·)(x))².

What the jackknife misses: the first stage's error shared by all fold models, and the bias of
a regularized, early-stopped regression (shrinkage towards the average effect). Neither can
be read off the data without an oracle, but both can be measured in a world where the truth is
known and resembles the data: outcomes re-simulated from the fitted model (control model plus
the fitted effects plus the arm's own out-of-fold residuals, reshuffled), the chosen learners
refitted on them. The ratio of an arm's actual squared error (against the effects we planted)
to its jackknife variance, at least 1, is that arm's scale c, and the interval is
τ̂(x) ± z sqrt(c V(x)). An arm given one effect for everyone adds the spread of effects it could
not rule out (``undetected``, a shrunk model's spread, which measured smaller than the true
spread, so scaled by c too).

Replicates. One replicate's ratio is noisy, worst on small cohorts, where a replicate is also
cheap: the bootstrap runs ``BOOTSTRAP_ROWS // n`` replicates (1 to ``MAX_REPLICATES``) and
pools their errors, so its cost stays about one replicate of a 20,000-row fit.

Bias the re-simulated world cannot show. Its outcomes come from the fitted (smooth, learnable)
control model and effects, so a learner's bias from a hard baseline, confounding or shrinkage
of a real (rougher) effect never appears there. The doubly robust pseudo-outcome ψ shows it on
the real data: E[ψ | x] = τ(x) when the propensities are right, so the residual ρ = ψ − τ̂_oof
of the out-of-fold effect has E[ρ | x] = b(x), the bias. ``held_out_bias_terms`` clips ρ at
its 2.5 and 97.5 % quantiles (``WINSORIZE``: on IHDP-like cohorts a single residual of 25
standard deviations otherwise reads as bias), fits it on the out-of-fold effect by least squares,
ρ ≈ m + β (f − f̄) (f: the out-of-fold effect, or for an arm given one effect for everyone the
personalized challenger's), and takes the squared bias along that line: the unbiased
m² − se(m)² (clipped at 0) for the average, and (|β| + ``BIAS_Z`` se(β))² Var(f) for the
slope (a shrinkage the data cannot rule out). The interval adds them to every person's
variance of that arm. It sees bias along the effect's own ordering only: a bias that averages
out along f stays invisible.

The choice the data cannot make. Selection keeps the candidates (T, X, DR, their settings)
with the smallest doubly robust loss, but others often fit the held-out rows about as well
(their loss not clearly worse, the ensemble's own test) while lying well away from the chosen
effect. The jackknife refits one learner, the re-simulated world plants the chosen learner's
own effect, and the held-out bias line needs a bias larger than the pseudo-outcomes' noise
(Var ψ ≈ 6 at n = 5,000 on Nie and Wager's setups puts a squared error of 0.025 out of its
reach): none of them sees how far the truth may lie from this one choice. The plausible
candidates' mean squared distance from the chosen effect (``plausible_disagreement``) does;
``DISAGREEMENT_WEIGHT`` of it enters every person's variance of that arm. For an arm given one
effect for everyone, the undetected spread, the weighted disagreement and the held-out slope
term all measure the personalized candidates' distance from the constant: the largest of the
three enters, not their sum (``extra_variance``).

What the held-out rows say the error is. The doubly robust estimate of an arm's squared error
out of fold, D = mean((ψ − τ̂_oof)² − r²) (``dr_squared_error``), cancels the pseudo-outcome's
noise row by row but misses the plug-in's own error: it is E[(τ − τ̂)²] − E[δ²]. Each
bootstrap world knows its truth, so what D misses there, κ* (the refitted effect's squared
error out of fold minus the world's own D), is measured in every replicate. Where the
replicates agree (their standard error at most D's) and D + κ̄* stands clear of 0 (two of
its standard errors), no person's whole variance is below it (``error_floor``); with one
replicate (cohorts over ``BOOTSTRAP_ROWS // 2`` rows) the agreement cannot be judged and
there is no such floor. It reaches arms whose chosen effect is no better than the plug-in
(Nie and Wager's D: 83 -> 86.5 % on fresh draws), where the world is as hard as the data.

Measured by ``bench/coverage.py`` on 14 families of cohorts from other generators, six
realisations each, scored against their truth (which the method never sees); the rules are
compared by replaying captured fits (``bench/interval_replay.py``) on tuning seeds, then
scored once on held-out seeds: see docs/benchmarks.md.
"""

from __future__ import annotations

import warnings

import numpy as np

from recommender.levels import two_sided_z

from ._base import PerArmLearner, SeedStream
from ._dr import DRLearner
from ._nuisance import fit_nuisance
from ._t import TLearner
from ._x import XLearner

__all__ = [
    "jackknife_variance",
    "shrink_variance",
    "interval",
    "calibrate_scale",
    "held_out_bias",
    "held_out_bias_terms",
    "extra_variance",
    "combine",
    "bootstrap_replicates",
    "plausible_disagreement",
    "dr_squared_error",
    "error_floor",
    "AVERAGE_ROWS",
    "BIAS_Z",
    "DISAGREEMENT_WEIGHT",
    "WINSORIZE",
]

# Rows enough to pin down an arm's average jackknife variance or squared error (per-person
# variances differ by a few times, so 2,000 rows put the average within a few per cent);
# more only cost fitting time.
AVERAGE_ROWS = 2000
# Replicates of the parametric bootstrap: as many as fit in the time of one replicate of a
# 20,000-row cohort (the size the project trains on), at most four.
BOOTSTRAP_ROWS = 20_000
MAX_REPLICATES = 4
# replicate r draws its reshuffles from REPLICATE_DRAWS(seed, r) and fits its world's first
# stage from REPLICATE_WORLD(seed, r) (replicate 0 keeps the seeds the single replicate had)
REPLICATE_DRAWS = SeedStream(7919, 7919)
REPLICATE_WORLD = SeedStream(7919, 1)
# The slope's bias term takes the estimate plus BIAS_Z of its standard errors: a shrinkage the
# data cannot rule out. Replayed on the fitted attributes of bench/coverage.py's 39 cohorts (14
# families), families meeting issue 14's acceptance: 4 at 0, 8 at 0.25, 9 at 0.5, 8 at 0.75, 5
# at 1. Chosen on that battery, so its figures flatter the rule a little.
BIAS_Z = 0.5
# Share of the plausible candidates' disagreement added to every person's variance (see
# ``plausible_disagreement``); chosen on bench/coverage.py's tuning seeds (docs/benchmarks.md).
DISAGREEMENT_WEIGHT = 0.5
# The error floor (``error_floor``) is read only where the bootstrap's worlds agree on what
# the held-out estimate misses: their standard error at most FLOOR_STEADY times the estimate's
# own, and the floor at least FLOOR_DISTINCT of its standard errors above 0. Not tuned (1 and
# 2); fixed before the fresh draws that judged them (bench/interval_passes.py, tenth pass).
FLOOR_STEADY = 1.0
FLOOR_DISTINCT = 2.0
# The held-out bias reads the residuals ψ − τ̂ clipped at these quantiles: on an IHDP-like
# cohort (econml-ihdp-a) one residual of 25 standard deviations made the slope term 17 times
# the squared error it stands for.
# Recorded as a lead by the fourth pass (tuning seeds 1-6) and confirmed with the rule fixed
# in advance on seeds 7-12 (bench/interval_passes.py, docs/benchmarks.md, fifth pass).
WINSORIZE = (0.025, 0.975)


def bootstrap_replicates(n: int) -> int:
    return int(np.clip(BOOTSTRAP_ROWS // max(n, 1), 1, MAX_REPLICATES))


def plausible_disagreement(candidates: np.ndarray, chosen: np.ndarray) -> float:
    """Mean squared distance of the plausible candidates' effects from the chosen effect.

    ``candidates`` (C, n): out-of-fold effects of the personalized candidates whose doubly
    robust loss is not clearly worse than the best's (the ensemble's own test); ``chosen`` (n,):
    the chosen effect's. Each of them fits the data about as well as the chosen one, so the
    data cannot say that the truth lies nearer to the chosen effect than they do: their
    distance is the error of the choice itself, which neither the jackknife (one learner's
    refits) nor the re-simulated world (whose planted effect the chosen learner shaped) sees.
    Rows where a candidate's effect is not finite are left out.
    """
    squared = (np.asarray(candidates, float) - np.asarray(chosen, float)[None, :]) ** 2
    finite = np.isfinite(squared)
    if not finite.any():
        return 0.0
    return float(np.mean([row[ok].mean() for row, ok in zip(squared, finite) if ok.any()]))


def dr_squared_error(pseudo, oof, codes, y, mu, received) -> tuple[np.ndarray, np.ndarray]:
    """Per arm, the doubly robust estimate of the out-of-fold effect's mean squared error and
    its standard error: mean((ψ − τ̂_oof)² − r²), r² the pseudo-outcome's own noise of a row
    that received the arm or control, ((y − μ_T) / e_T)² (0 for other rows).

    Row by row ψ − τ̂ = d + r, d the cross-fitted plug-in μ_a − μ_0 minus τ̂, so the noise
    cancels, but the estimate is E[(τ − τ̂)²] − E[δ²], δ the plug-in's own error: it misses
    what the outcome models get wrong, which the parametric bootstrap's worlds measure
    (``_replicate``'s third figure). ``pseudo``, ``oof``: (m, arms); ``codes`` (0: control),
    ``y``, ``received``: (m,); ``mu``: (m, arms + 1), control first. Rows where the
    difference is not finite are left out; an arm with fewer than 3 rows gets (0, inf).
    """
    codes = np.asarray(codes)
    rows = np.arange(len(codes))
    residual = (np.asarray(y, float) - mu[rows, codes]) / received
    arms = pseudo.shape[1]
    mse, se = np.zeros(arms), np.full(arms, np.inf)
    for j in range(arms):
        noise = np.where((codes == 0) | (codes == j + 1), residual**2, 0.0)
        per_row = (pseudo[:, j] - oof[:, j]) ** 2 - noise
        per_row = per_row[np.isfinite(per_row)]
        if len(per_row) < 3:
            continue
        mse[j] = per_row.mean()
        se[j] = per_row.std(ddof=1) / np.sqrt(len(per_row))
    return mse, se


def error_floor(estimate, se, world_miss) -> np.ndarray:
    """Per arm, the least variance any person's interval may have: the held-out estimate of
    the arm's squared error (``dr_squared_error``: ``estimate``, ``se``) plus what that
    estimate misses in the bootstrap's worlds (``world_miss``, (replicates, arms)), where the
    worlds' reading is steady; 0 elsewhere.

    F = D + κ̄, κ̄ the replicates' mean miss, read only if (i) κ̄'s standard error between the
    replicates is at most ``FLOOR_STEADY`` times D's (one replicate: its spread is unknown,
    no floor) and (ii) F ≥ ``FLOOR_DISTINCT`` se(F), se(F)² = se(D)² + se(κ̄)².
    """
    world_miss = np.atleast_2d(np.asarray(world_miss, float))
    arms = world_miss.shape[1]
    if len(world_miss) < 2:
        return np.zeros(arms)
    miss = world_miss.mean(axis=0)
    se_miss = world_miss.std(axis=0, ddof=1) / np.sqrt(len(world_miss))
    floor = estimate + miss
    steady = se_miss <= FLOOR_STEADY * se
    distinct = floor >= FLOOR_DISTINCT * np.sqrt(se**2 + se_miss**2)
    floor = np.where(steady & distinct & np.isfinite(floor), np.maximum(floor, 0.0), 0.0)
    return floor


def held_out_bias(
    pseudo: np.ndarray,
    oof: np.ndarray,
    ranking: np.ndarray,
    z: float = BIAS_Z,
    winsorize: tuple[float, float] | None = WINSORIZE,
) -> np.ndarray:
    """Per arm, the squared bias of the out-of-fold effects that the held-out rows show: the
    sum of ``held_out_bias_terms``."""
    average, slope = held_out_bias_terms(pseudo, oof, ranking, z, winsorize)
    return average + slope


def held_out_bias_terms(
    pseudo: np.ndarray,
    oof: np.ndarray,
    ranking: np.ndarray,
    z: float = BIAS_Z,
    winsorize: tuple[float, float] | None = WINSORIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Per arm, the held-out bias's (average term, slope term).

    ``pseudo``, ``oof``, ``ranking``: (n, arms) doubly robust pseudo-effects ψ, the learner's
    out-of-fold effects τ̂, and the effects f along which a bias is sought. The residual
    ρ = ψ − τ̂, clipped at its own ``winsorize`` quantiles (None: not clipped), is fitted by
    least squares on f, ρ ≈ m + β (f − f̄); the terms are max(m² − se(m)², 0) and
    (|β| + z se(β))² Var(f), with se(m) = sd(ρ) / sqrt(n) and se(β) the
    heteroscedasticity-robust standard error sqrt(mean(e² (f − f̄)²) / n) / Var(f) (e: the
    fit's residuals). Rows with a non-finite residual or ranking are left out.
    """
    average_terms = np.zeros(pseudo.shape[1])
    slope_terms = np.zeros(pseudo.shape[1])
    for j in range(pseudo.shape[1]):
        residual = pseudo[:, j] - oof[:, j]
        keep = np.isfinite(residual) & np.isfinite(ranking[:, j])
        n = int(keep.sum())
        if n < 3:
            continue
        rho, f = residual[keep], ranking[keep, j]
        if winsorize is not None:
            rho = np.clip(rho, *np.quantile(rho, winsorize))
        mean = rho.mean()
        average = max(mean**2 - rho.var(ddof=1) / n, 0.0)
        centred = f - f.mean()
        spread = float(np.mean(centred**2))
        slope_term = 0.0
        # a spread at rounding level (an arm's constant effect) has no slope to speak of
        if spread > 1e-12 * max(1.0, float(np.mean(f**2))):
            slope = float(np.mean(rho * centred)) / spread
            error = rho - mean - slope * centred
            slope_se = float(np.sqrt(np.mean(error**2 * centred**2) / n)) / spread
            slope_term = (abs(slope) + z * slope_se) ** 2 * spread
        average_terms[j], slope_terms[j] = average, slope_term
    return average_terms, slope_terms


def extra_variance(
    *,
    undetected: np.ndarray,
    scale: np.ndarray,
    disagreement: np.ndarray,
    bias_average: np.ndarray,
    bias_slope: np.ndarray,
) -> np.ndarray:
    """Per arm, the variance added to every person's: the one rule the model and the replay
    harness (``bench/interval_replay.py``) use.

    A personalized arm adds ``DISAGREEMENT_WEIGHT`` × the disagreement, the held-out slope term
    and the average term. For an arm given one effect for everyone (``undetected`` > 0) the
    undetected spread (times the scale), the weighted disagreement and the slope term (sought
    along the personalized challenger's effect) all measure the personalized candidates'
    distance from the constant: only the largest of the three is added, then the average
    term.
    """
    shared = DISAGREEMENT_WEIGHT * np.asarray(disagreement, float)
    one_effect = np.maximum.reduce([undetected * scale, shared, bias_slope])
    return np.where(undetected > 0, one_effect, shared + bias_slope) + bias_average


def combine(
    effect: np.ndarray,
    fold_effects: np.ndarray,
    *,
    typical: np.ndarray,
    scale: np.ndarray,
    floor: np.ndarray,
    extra: np.ndarray,
    alpha: float,
):
    """Effect and interval from the members' predictions: the one rule every path uses.

    ``effect`` (n, arms) from the models of all rows; ``fold_effects`` (K, n, arms) from the
    fold models. The variance is the shrunk jackknife times the scale, never below the arm's
    average-effect variance (``floor``), plus ``extra`` (undetected spread and held-out bias).
    Returns ``(effect, lower, upper)``.
    """
    variance = shrink_variance(jackknife_variance(fold_effects), typical)
    variance = np.maximum(variance * scale[None, :], floor[None, :]) + extra[None, :]
    lower, upper = interval(effect, variance, alpha, np.ones((1, effect.shape[1])))
    return effect, lower, upper


def jackknife_variance(fold_effects: np.ndarray) -> np.ndarray:
    """(K, n, arms) fold effects to (n, arms) jackknife variances."""
    k = fold_effects.shape[0]
    centred = fold_effects - fold_effects.mean(axis=0, keepdims=True)
    return (k - 1) / k * (centred**2).sum(axis=0)


def shrink_variance(variance: np.ndarray, typical: np.ndarray, weight: float = 0.5):
    """Pull each person's jackknife variance halfway to the arm's typical (training) variance.

    With K folds the per-person estimate has only K − 1 degrees of freedom; alone it makes
    some intervals far too narrow by chance. Shrinking keeps the ranking of who is more
    uncertain while damping that noise.
    """
    return weight * variance + (1.0 - weight) * typical[None, :]


def interval(effect: np.ndarray, variance: np.ndarray, alpha: float, scale: np.ndarray):
    z = two_sided_z(float(alpha))
    half = z * np.sqrt(variance * scale)
    return effect - half, effect + half


def refit_chosen(nuisance, chosen: PerArmLearner) -> PerArmLearner:
    """The same per-arm learners and settings, fitted on another nuisance (no selection)."""
    groups: dict = {}
    for j, learners in enumerate(chosen.chosen):
        for learner in learners:
            groups.setdefault((learner.name, learner.spec), set()).add(j)
    built = {}
    for (name, spec), arms in groups.items():
        if name == "t":

            def fit_of(code, wanted):
                return next(f for f in nuisance.outcome_fits[code] if f.spec == wanted)

            built[(name, spec)] = TLearner(
                nuisance,
                fit_of(0, spec[0]),
                [
                    fit_of(j + 1, spec[1][j]) if j in arms else None
                    for j in range(len(chosen.chosen))
                ],
            )
        elif name == "x":
            built[(name, spec)] = XLearner(nuisance, spec, only=arms)
        else:
            built[(name, spec)] = DRLearner(nuisance, spec, only=arms)
    return PerArmLearner(
        [
            [built[(learner.name, learner.spec)] for learner in learners]
            for learners in chosen.chosen
        ]
    )


def calibrate_scale(
    nuisance,
    chosen: PerArmLearner,
    *,
    design,
    clip,
    n_folds,
    seed,
    max_rows=AVERAGE_ROWS,
    replicates=None,
) -> tuple[np.ndarray, dict]:
    """Per-arm variance scale from the parametric bootstrap (see module doc)."""
    replicates = bootstrap_replicates(len(nuisance.M)) if replicates is None else replicates
    squared_error, variance, miss = 0.0, 0.0, []
    for r in range(replicates):
        error_r, variance_r, miss_r = _replicate(
            nuisance,
            chosen,
            design=design,
            clip=clip,
            n_folds=n_folds,
            seed=seed,
            replicate=r,
            max_rows=max_rows,
        )
        squared_error, variance = squared_error + error_r, variance + variance_r
        miss.append(miss_r)
    squared_error, variance = squared_error / replicates, variance / replicates
    ratio = squared_error / np.maximum(variance, 1e-12)
    pooled = squared_error.sum() / max(variance.sum(), 1e-12)
    details = {
        "bootstrap_mse": squared_error,
        "bootstrap_jackknife_variance": variance,
        "pooled_ratio": float(pooled),
        "replicates": replicates,
        # per replicate, what ``dr_squared_error`` misses where the truth is known
        "world_miss": np.array(miss, dtype=float),
    }
    # Each arm its own ratio, at least 1 (an arm whose ratio is not finite takes the pooled
    # one). The rule before (every arm the largest arm's ratio, at most twice the pooled one)
    # over-covered six-arm cohorts (95 %, intervals 1.23 times the width needed); with this
    # module's held-out bias term, two fewer families of bench/coverage.py met the acceptance.
    pooled = pooled if np.isfinite(pooled) else 1.0
    scale = np.where(np.isfinite(ratio), ratio, pooled)
    return np.maximum(scale, 1.0), details


def _replicate(
    nuisance, chosen: PerArmLearner, *, design, clip, n_folds, seed, replicate, max_rows
):
    """One re-simulated world: per arm, the refitted learners' mean squared error against the
    planted effects and their mean (shrunk) jackknife variance, on up to ``max_rows`` rows;
    and what the doubly robust estimate of the squared error misses there: the refitted
    effect's squared error out of fold minus ``dr_squared_error`` on the world's rows."""
    rng = np.random.default_rng(REPLICATE_DRAWS(seed, replicate))
    M, codes, y, mu = nuisance.M, nuisance.codes, nuisance.y, nuisance.mu
    n = len(M)
    planted = chosen.effect(M)  # (n, arms - 1), the truth of the synthetic world
    residual = y - mu[np.arange(n), codes]
    shuffled = residual.copy()
    for a in range(len(nuisance.arms)):
        rows = np.flatnonzero(codes == a)
        shuffled[rows] = residual[rng.permutation(rows)]
    effect_received = np.zeros(n)
    treated = codes > 0
    effect_received[treated] = planted[np.flatnonzero(treated), codes[treated] - 1]
    y_star = mu[:, 0] + effect_received + shuffled
    # each arm's candidates in the re-simulated world: the spec that made the scores, plus
    # the specs of the T-learner pairs chosen for some arm
    per_arm = [[cross.spec] for cross in nuisance.outcome]
    for j, learners in enumerate(chosen.chosen):
        for learner in learners:
            if learner.name == "t":
                for code, spec in ((0, learner.spec[0]), (j + 1, learner.spec[1][j])):
                    if spec not in per_arm[code]:
                        per_arm[code].append(spec)
    with warnings.catch_warnings():  # the fit itself already warned about overlap
        warnings.simplefilter("ignore")
        world = fit_nuisance(
            M,
            codes,
            y_star,
            nuisance.arms,
            categorical=nuisance.categorical,
            feature_names=[str(j) for j in range(M.shape[1])],
            propensity=(
                nuisance.propensity.received if nuisance.propensity.source == "given" else None
            ),
            design="randomized" if nuisance.propensity.source == "design shares" else design,
            clip=clip,
            n_folds=n_folds,
            seed=REPLICATE_WORLD(seed, replicate),
            n_jobs=nuisance.n_jobs,
            per_arm_candidates=per_arm,
            refit_outcomes=False,
            matrix=nuisance.matrix,
        )
    refitted = refit_chosen(world, chosen)
    oof = np.asarray(refitted.oof, float)
    estimate, _ = dr_squared_error(
        world.pseudo_effects(), oof, world.codes, world.y, world.mu, world.propensity.received
    )
    miss = ((oof - planted) ** 2).mean(axis=0) - estimate

    rows = np.arange(n) if n <= max_rows else rng.choice(n, max_rows, replace=False)
    estimate = refitted.effect(M[rows])
    raw = jackknife_variance(refitted.fold_effects(M[rows]))
    variance = shrink_variance(raw, raw.mean(axis=0))
    squared_error = ((estimate - planted[rows]) ** 2).mean(axis=0)
    return squared_error, variance.mean(axis=0), miss
