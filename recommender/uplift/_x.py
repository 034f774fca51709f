"""X-learner: impute each person's effect from the other group's outcome model, then regress.

For arm a: among its own rows the imputed effect is y − μ̂_control(x); among control rows it
is μ̂_a(x) − y (both μ̂ out-of-fold). One regression per group, combined as
τ̂ = g τ̂_control-side + (1 − g) τ̂_arm-side with g the arm's share of the pair, a constant
weight, which keeps the prediction path free of a propensity model and the contributions
exactly additive.
"""

from __future__ import annotations

import numpy as np

from ._base import EffectLearner, Part
from ._regressors import crossfit, refit

__all__ = ["XLearner"]


class XLearner(EffectLearner):
    name = "x"

    def __init__(self, nuisance, spec, *, do_refit=True, only=None):
        self.spec = spec
        self.label = spec.label
        codes, y, mu = nuisance.codes, nuisance.y, nuisance.mu
        control_rows = codes == 0
        self.parts, oof, self.crossfits = [], [], []
        for a in range(1, len(nuisance.arms)):
            if only is not None and a - 1 not in only:  # another candidate serves this arm
                self.parts.append([])
                oof.append(np.zeros(len(y)))
                continue
            arm_rows = codes == a
            g = arm_rows.sum() / (arm_rows.sum() + control_rows.sum())
            arm_side = y - mu[:, 0]  # read only on arm rows
            control_side = mu[:, a] - y  # read only on control rows
            pieces, effect = [], np.zeros(len(y))
            for weight, target, rows, salt in ((1.0 - g, arm_side, arm_rows, 1),
                                               (g, control_side, control_rows, 2)):
                cross = crossfit(spec, nuisance.matrix, target, rows, nuisance.folds,
                                 seed=nuisance.seed + 13 * a + salt, n_jobs=nuisance.n_jobs)
                self.crossfits.append((len(self.parts), len(pieces), cross, target, rows))
                pieces.append(Part(weight, None, cross.fold_models))
                effect += weight * cross.oof
            self.parts.append(pieces)
            oof.append(effect)
        self.oof = np.column_stack(oof)
        self._seed = nuisance.seed
        self._n_jobs = nuisance.n_jobs
        self._matrix = nuisance.matrix
        if do_refit:
            self.refit()

    def refit(self, arms=None):
        """Fit the final models on all rows (only the arms this candidate was chosen for)."""
        for j, p, cross, target, rows in self.crossfits:
            if arms is not None and j not in arms:
                continue
            model = refit(cross, self._matrix, target, rows, seed=self._seed + 17 * j + p,
                          n_jobs=self._n_jobs)
            self.parts[j][p].full_model = model
        self.crossfits, self._matrix = None, None
        return self
