"""DR-learner: regress the doubly robust pseudo-outcome Γ_a − Γ_control on the features.

The pseudo-outcome is unbiased for the arm's effect whatever the outcome models' errors, as
long as the propensities are right (in a trial they are the design shares), so the final
regression inherits no bias from the first stage. It is cross-fitted on the same folds.
"""

from __future__ import annotations

import numpy as np

from ._base import EffectLearner, Part
from ._regressors import crossfit, refit

__all__ = ["DRLearner"]


class DRLearner(EffectLearner):
    name = "dr"

    def __init__(self, nuisance, spec, *, do_refit=True, only=None):
        self.spec = spec
        self.label = spec.label
        pseudo = nuisance.pseudo_effects()
        everyone = np.ones(len(pseudo), dtype=bool)
        self.parts, oof, self.crossfits = [], [], []
        for j in range(pseudo.shape[1]):
            if only is not None and j not in only:  # another candidate serves this arm
                self.crossfits.append(None)
                self.parts.append([])
                oof.append(np.zeros(len(pseudo)))
                continue
            cross = crossfit(spec, nuisance.matrix, pseudo[:, j], everyone, nuisance.folds,
                             seed=nuisance.seed + 7 * j + 1, n_jobs=nuisance.n_jobs)
            self.crossfits.append((cross, pseudo[:, j], everyone))
            self.parts.append([Part(1.0, None, cross.fold_models)])
            oof.append(cross.oof)
        self.oof = np.column_stack(oof)
        self._nuisance_seed, self._n_jobs = nuisance.seed, nuisance.n_jobs
        self._matrix = nuisance.matrix
        if do_refit:
            self.refit()

    def refit(self, arms=None):
        """Fit the final models on all rows (only the arms this candidate was chosen for)."""
        for j, entry in enumerate(self.crossfits):
            if entry is None or (arms is not None and j not in arms):
                continue
            cross, target, rows = entry
            model = refit(cross, self._matrix, target, rows, seed=self._nuisance_seed + 7 * j + 3,
                          n_jobs=self._n_jobs)
            self.parts[j][0].full_model = model
        self.crossfits, self._matrix = None, None
        return self
