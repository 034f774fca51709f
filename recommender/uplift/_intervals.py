"""Intervals for each person's effect: grouped jackknife, scaled by a parametric bootstrap.

Variance. Each of the K fold models is the learner's last stage refitted without one fold;
the delete-a-group jackknife turns their spread into a variance for the all-rows estimate,
V(x) = (K − 1) / K · Σ_k (τ̂_(k)(x) − τ̂_(·)(x))².

What the jackknife misses: the first stage's error shared by all fold models, and the bias of
a regularized, early-stopped regression (shrinkage towards the average effect). Neither can
be read off the data without an oracle, but both can be measured in a world where the truth is
known and resembles the data: outcomes re-simulated from the fitted model (control model plus
the fitted effects plus the arm's own out-of-fold residuals, reshuffled), the chosen learners
refitted on them. The ratio of their actual squared error (against the effects we planted) to
their jackknife variance, the largest over arms but at most twice the ratio pooled over arms,
gives the scale c ≥ 1, and the interval is τ̂(x) ± z sqrt(c V(x)). The planted effects are
smoother than the real ones, so c errs small; the largest arm's ratio makes up for it. An arm
given one effect for everyone adds the spread of effects it could not rule out (``undetected``,
a shrunk model's spread, which measured smaller than the true spread, so scaled by c too).

Replicates. One replicate's ratio is noisy, worst on small cohorts, where a replicate is also
cheap: the bootstrap runs ``BOOTSTRAP_ROWS // n`` replicates (1 to ``MAX_REPLICATES``) and
pools their errors, so its cost stays about one replicate of a 20,000-row fit.

Bias the re-simulated world cannot show. Its outcomes come from the fitted (smooth, learnable)
control model, so a learner's bias from a hard baseline or confounding (an X-learner whose
control model misses a kink) never appears there. The doubly robust pseudo-outcome D shows it
on the real data: E[D | x] = τ(x) when the propensities are right, so among people grouped by
their out-of-fold effect, the mean of D − τ̂_oof estimates the group's bias. ``held_out_bias``
averages the squared group biases, less their sampling variance (an unbiased estimate), adds
half its standard error (a bias the data cannot rule out; ``BIAS_Z``), clips at 0, and the
interval adds it to every person's variance of that arm. It sees bias along the ordering of the
effects only: a bias that averages out within every group (a step the effect's ranking does not
follow) stays invisible.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import norm

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
    "combine",
    "bootstrap_replicates",
    "AVERAGE_ROWS",
    "BIAS_GROUPS",
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
# Groups of people (by out-of-fold effect) whose mean doubly robust residual estimates a bias:
# few enough that each group's mean is precise (a fifth of the rows), enough to see a slope.
BIAS_GROUPS = 5
# The bias term is the estimate plus BIAS_Z of its standard errors: a bias the data cannot
# rule out. Measured by bench/coverage.py: at 0 (the unbiased estimate) EconML's IHDP surface B
# covered 84 % and a heavy-tailed three-arm design 86 %; at 1 IHDP covered 96.5 % (1.44 times
# the width needed); half a standard error sits between.
BIAS_Z = 0.5


def bootstrap_replicates(n: int) -> int:
    return int(np.clip(BOOTSTRAP_ROWS // max(n, 1), 1, MAX_REPLICATES))


def held_out_bias(
    pseudo: np.ndarray,
    oof: np.ndarray,
    ranking: np.ndarray,
    groups: int = BIAS_GROUPS,
    z: float = BIAS_Z,
) -> np.ndarray:
    """Per arm, the mean squared bias of the out-of-fold effects over groups of people.

    ``pseudo``, ``oof``, ``ranking``: (n, arms) doubly robust pseudo-effects, the learner's
    out-of-fold effects, and the effects that order people into ``groups`` equal groups.
    A group's mean residual r̄_g has E[r̄_g²] = bias_g² + Var(r̄_g); the estimate is the mean
    of r̄_g² − s_g²/n_g over groups, plus ``z`` of its standard errors, clipped at 0.
    """
    out = np.zeros(pseudo.shape[1])
    for j in range(pseudo.shape[1]):
        residual = pseudo[:, j] - oof[:, j]
        keep = np.isfinite(residual)
        order = np.flatnonzero(keep)[np.argsort(ranking[keep, j], kind="stable")]
        parts = [
            (residual[g].mean(), residual[g].var(ddof=1) / len(g))
            for g in np.array_split(order, groups)
            if len(g) > 1
        ]
        if not parts:
            continue
        mean, noise = (np.array(v) for v in zip(*parts))
        estimate = float(np.mean(mean**2 - noise))
        # the estimate's standard error (a group's r̄² has variance 2 v² + 4 b² v)
        error = float(
            np.sqrt(np.sum(2 * noise**2 + 4 * np.maximum(mean**2 - noise, 0) * noise)) / len(parts)
        )
        out[j] = max(0.0, estimate + z * error)
    return out


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
    z = norm.ppf(1 - alpha / 2)
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
    squared_error, variance = 0.0, 0.0
    for r in range(replicates):
        error_r, variance_r = _replicate(
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
    squared_error, variance = squared_error / replicates, variance / replicates
    ratio = squared_error / np.maximum(variance, 1e-12)
    # one replicate's per-arm ratio is noisy (0.6 to 18 between cohorts of the default
    # scenario) and the planted truth errs smooth, so every ratio errs small: on three default
    # cohorts (n = 20,000) the pooled ratio covered 84-90 % of true effects with 90 % intervals,
    # the largest arm's ratio 93-95 %. Every arm takes the largest, but never more than twice
    # the pooled ratio: on small arms one replicate's ratio is wild (79 at n = 3,000, six arms)
    # and at n = 100,000 one arm's 18 against a pooled 4.5 made every interval too wide.
    pooled = squared_error.sum() / max(variance.sum(), 1e-12)
    details = {
        "bootstrap_mse": squared_error,
        "bootstrap_jackknife_variance": variance,
        "pooled_ratio": float(pooled),
        "replicates": replicates,
    }
    finite = ratio[np.isfinite(ratio)]
    largest = float(finite.max()) if finite.size else float(pooled)
    scale = min(max(largest, pooled), 2.0 * pooled)
    return np.full(len(ratio), max(scale, 1.0) if np.isfinite(scale) else 1.0), details


def _replicate(
    nuisance, chosen: PerArmLearner, *, design, clip, n_folds, seed, replicate, max_rows
):
    """One re-simulated world: per arm, the refitted learners' mean squared error against the
    planted effects and their mean (shrunk) jackknife variance, on up to ``max_rows`` rows."""
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

    rows = np.arange(n) if n <= max_rows else rng.choice(n, max_rows, replace=False)
    estimate = refitted.effect(M[rows])
    raw = jackknife_variance(refitted.fold_effects(M[rows]))
    variance = shrink_variance(raw, raw.mean(axis=0))
    squared_error = ((estimate - planted[rows]) ** 2).mean(axis=0)
    return squared_error, variance.mean(axis=0)
