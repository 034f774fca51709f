"""Choosing the learner and its final-stage settings by a cross-validated doubly robust loss.

For each candidate the out-of-fold effects τ̂ are scored against the pseudo-outcomes
D_a = Γ_a − Γ_control: loss = Σ_a mean_i (D_ia − τ̂_ia)². Because E[D_a | x] = τ_a(x), this is
the candidate's mean squared error of the effect plus a constant shared by all candidates, so
the smallest loss is the best estimate of the smallest PEHE, and no oracle is ever read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._dr import DRLearner
from ._regressors import GBMSpec, RidgeSpec
from ._t import TLearner
from ._x import XLearner

__all__ = ["select_learner", "DEFAULT_FINAL_CANDIDATES"]

DEFAULT_FINAL_CANDIDATES = (
    GBMSpec(num_leaves=4, min_child_samples=100, learning_rate=0.03),
    GBMSpec(num_leaves=8, min_child_samples=50, learning_rate=0.03),
    RidgeSpec(alpha=10.0),
)


def select_learner(nuisance, learners, final_candidates):
    """Fit every (learner, settings) candidate out of fold; refit and return the best.

    Returns the fitted learner and the table of DR losses (``selection_``).
    """
    pseudo = nuisance.pseudo_effects()
    arms = [str(a) for a in nuisance.arms[1:]]
    fitted, rows = [], []
    for name in learners:
        if name == "t":
            built = [TLearner(nuisance)]
        elif name == "x":
            built = [XLearner(nuisance, spec, do_refit=False) for spec in final_candidates]
        else:
            built = [DRLearner(nuisance, spec, do_refit=False) for spec in final_candidates]
        fitted.extend(built)
    per_row = [((pseudo - learner.oof) ** 2).sum(axis=1) for learner in fitted]
    losses = np.array([r.mean() for r in per_row])
    best = int(np.argmin(losses))
    for c, learner in enumerate(fitted):
        by_arm = ((pseudo - learner.oof) ** 2).mean(axis=0)
        difference = per_row[c] - per_row[best]
        row = {"learner": learner.name, "settings": learner.label, "dr_loss": losses[c],
               "dr_loss_minus_best": losses[c] - losses[best],
               "standard_error": float(difference.std(ddof=1) / np.sqrt(len(difference)))
               if c != best else 0.0}
        row.update({f"dr_loss_{arm}": value for arm, value in zip(arms, by_arm)})
        row["chosen"] = c == best
        rows.append(row)
    chosen = fitted[best]
    if hasattr(chosen, "refit") and getattr(chosen, "crossfits", None) is not None:
        chosen.refit()
    table = pd.DataFrame(rows).sort_values("dr_loss", kind="stable").reset_index(drop=True)
    return chosen, table
