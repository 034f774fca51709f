"""Choosing the learner and its final-stage settings by a cross-validated doubly robust loss.

For each candidate the out-of-fold effects τ̂ are scored against the pseudo-outcomes
D_a = Γ_a − Γ_control: loss_a = mean_i (D_ia − τ̂_ia)². Because E[D_a | x] = τ_a(x), this is
the candidate's mean squared error of arm a's effect plus a constant shared by all candidates,
so the smallest loss points at the smallest PEHE, and no oracle is ever read. The loss is a
sum over arms, so each arm keeps its own best candidate.

Whenever the DR-learner is a candidate, so is one effect for everyone (the arm's doubly robust
average). An arm keeps a personalized model only when the best personalized DR final stage's
out-of-fold loss is below the constant's by more than ``HETEROGENEITY_Z`` standard errors of the
paired difference; otherwise the arm gets the constant alone. (The best-linear-predictor slope
test was tried in its place and separated the homogeneous and default scenarios less well.)
With several candidates the best loss is biased low (the winner's curse), and without this rule
noise in the effects reorders arms whose true effects are the same for everyone, recommending
a worse arm to some people while claiming personalization.

The ensemble of an arm averages up to ``ensemble_size`` best candidates but leaves out any
whose loss is worse than the best's by more than ``ENSEMBLE_Z`` standard errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._base import PerArmLearner
from ._dr import DRLearner
from ._intervals import plausible_disagreement
from ._regressors import ConstantSpec, GBMSpec, RidgeSpec
from ._t import TLearner
from ._x import XLearner

__all__ = ["select_learner", "DEFAULT_FINAL_CANDIDATES", "HETEROGENEITY_Z"]

# How clearly a personalized model must beat one-effect-for-all. Measured (n = 20,000 RCT): at 0
# noise split the homogeneous scenario's arms (83-89 % got the best one); at 1.645 mild real
# heterogeneity in three default arms was lost; 1.0 gives one arm to all on homogeneous, and on
# default keeps all but at most one arm personalized.
HETEROGENEITY_Z = 1.0
CONSTANT = ConstantSpec()
# The ensemble leaves out a candidate whose loss is worse than the best's by more than this many
# standard errors. On IHDP realization 9 a T-learner pair with tree outcome models, six standard
# errors behind the log-linear pairs, took the mean root PEHE from 0.8 to 5.7; at one standard
# error the ensembles of the default scenario lost members and their intervals grew too wide.
ENSEMBLE_Z = 2.0

DEFAULT_FINAL_CANDIDATES = (
    GBMSpec(num_leaves=4, min_child_samples=100, learning_rate=0.1, patience=15),
    # randomized split points: smoother, lower-variance surfaces from the same small trees
    GBMSpec(
        num_leaves=4,
        min_child_samples=100,
        learning_rate=0.05,
        patience=20,
        extra=(("extra_trees", True),),
    ),
    RidgeSpec(alpha=10.0),
)


def select_learner(
    nuisance, learners, final_candidates, ensemble_size=3, heterogeneity_z=HETEROGENEITY_Z
):
    """Fit every (learner, settings) candidate out of fold; per arm refit and average the best.

    Returns the fitted learner and the table of DR losses (``selection_``), one row per
    candidate and arm, best first within each arm; ``chosen`` marks the averaged ones.
    """
    pseudo = nuisance.pseudo_effects()
    arms = list(nuisance.arms[1:])
    fitted = []
    for name in learners:
        if name == "t":
            # pairs of one family (same settings for control and arm), plus the pairs of the
            # models with the smallest outcome error; not every cross pair, since each extra
            # candidate is one more chance for noise in the loss to win (winner's curse)
            # (an arm may lack a family: some regressors only suit positive outcomes)
            by_spec = [{f.spec: f for f in fits} for fits in nuisance.outcome_fits]
            pairs = [
                [spec] * len(by_spec)
                for spec in by_spec[0]
                if all(spec in fits for fits in by_spec[1:])
            ]
            best_error = [min(fits, key=lambda f: f.loss).spec for fits in nuisance.outcome_fits]
            if best_error not in pairs:
                pairs.append(best_error)
            for specs in pairs:
                fitted.append(
                    TLearner(
                        nuisance,
                        by_spec[0][specs[0]],
                        [fits[spec] for fits, spec in zip(by_spec[1:], specs[1:])],
                        do_refit=False,
                    )
                )
        elif name == "x":
            fitted.extend(XLearner(nuisance, spec, do_refit=False) for spec in final_candidates)
        else:
            fitted.extend(DRLearner(nuisance, spec, do_refit=False) for spec in final_candidates)
    constant = None
    if "dr" in learners and heterogeneity_z is not None:
        fitted.append(DRLearner(nuisance, CONSTANT, do_refit=False))
        constant = len(fitted) - 1
    squared = np.stack([(pseudo - learner.oof) ** 2 for learner in fitted])  # (C, n, arms)
    losses = squared.mean(axis=1)  # (C, arms)
    losses[~np.isfinite(losses)] = np.inf  # a candidate that failed must never be chosen
    ranked = np.argsort(losses, axis=0, kind="stable")  # (C, arms), best first
    best = ranked[0]
    n = squared.shape[1]
    choice = []  # per arm: indices of the candidates averaged
    undetected = np.zeros(len(arms))  # per arm: spread of effects we could not rule out
    ranking = [None] * len(arms)  # per arm given one effect for all: the challenger's effects
    # The evidence of heterogeneity comes from the DR final stages alone: they are fitted out of
    # fold on the pseudo-outcomes, so their loss against the constant's is a fair comparison.
    # A T-learner's effect is made of the very outcome models inside the pseudo-outcomes, which
    # flatters its loss; it may still be chosen once heterogeneity is established.
    personalized_dr = [
        c for c, learner in enumerate(fitted) if learner.name == "dr" and c != constant
    ]
    for j in range(len(arms)):
        # once heterogeneity is established the constant is no candidate for the average
        top = [int(c) for c in ranked[:, j] if c != constant][:ensemble_size]
        # ...but not one clearly worse than the best (by more than ENSEMBLE_Z standard errors
        # of the paired difference): averaging it in costs accuracy
        top = [c for c in top if not _clearly_worse(squared[c, :, j], squared[top[0], :, j])]
        if constant is not None:
            challenger = min(personalized_dr, key=lambda c: losses[c, j], default=None)
            gain = (
                squared[constant, :, j] - squared[challenger, :, j]
                if challenger is not None
                else np.zeros(n)
            )
            if gain.mean() <= heterogeneity_z * gain.std(ddof=1) / np.sqrt(n):
                top = [constant]  # heterogeneity not supported: one effect for everyone
                # ...but not ruled out either: a person's effect may differ from the average
                # by as much as the personalized model's out-of-fold predictions spread
                if challenger is not None:
                    undetected[j] = float(fitted[challenger].oof[:, j].var(ddof=1))
                    ranking[j] = fitted[challenger].oof[:, j]
        choice.append(top)
    rows = []
    for j, arm in enumerate(arms):
        for c in np.argsort(losses[:, j], kind="stable"):
            learner = fitted[c]
            difference = squared[c, :, j] - squared[best[j], :, j]
            rows.append(
                {
                    "arm": arm,
                    "learner": learner.name,
                    "settings": learner.label,
                    "dr_loss": losses[c, j],
                    "dr_loss_minus_best": losses[c, j] - losses[best[j], j],
                    "standard_error": float(difference.std(ddof=1) / np.sqrt(len(difference))),
                    "chosen": c in choice[j],
                }
            )
    for c in {c for top in choice for c in top}:
        fitted[c].refit(arms={j for j in range(len(arms)) if c in choice[j]})
    chosen = PerArmLearner(
        [[fitted[c] for c in choice[j]] for j in range(len(arms))],
        undetected_variance=undetected,
        ranking_oof=ranking,
    )
    # per arm: how far the personalized candidates the loss cannot tell from the best lie from
    # the chosen effect (the interval's share for the choice among them, ``_intervals``)
    chosen.disagreement = np.zeros(len(arms))
    for j in range(len(arms)):
        personalized = [c for c in ranked[:, j] if c != constant and np.isfinite(losses[c, j])]
        if not personalized:
            continue
        plausible = [
            c
            for c in personalized
            if not _clearly_worse(squared[c, :, j], squared[personalized[0], :, j])
        ]
        chosen.disagreement[j] = plausible_disagreement(
            np.stack([fitted[c].oof[:, j] for c in plausible]), chosen.oof[:, j]
        )
    table = pd.DataFrame(rows)
    return chosen, table


def _clearly_worse(candidate: np.ndarray, best: np.ndarray) -> bool:
    difference = candidate - best
    if not np.isfinite(difference.mean()):
        return True
    return difference.mean() > ENSEMBLE_Z * difference.std(ddof=1) / np.sqrt(len(difference))
