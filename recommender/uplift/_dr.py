"""DR-learner: regress the doubly robust pseudo-outcome Γ_a − Γ_control on the features.

The pseudo-outcome is unbiased for the arm's effect whatever the outcome models' errors, as
long as the propensities are right (in a trial they are the design shares), so the final
regression inherits no bias from the first stage. It is cross-fitted on the same folds.
"""

from __future__ import annotations

import numpy as np

from ._base import DR_CROSSFIT, DR_REFIT, EffectLearner

__all__ = ["DRLearner"]


class DRLearner(EffectLearner):
    name = "dr"

    def __init__(self, nuisance, spec, *, do_refit=True, only=None):
        self.spec = spec
        self.label = spec.label
        pseudo = nuisance.pseudo_effects()
        everyone = np.ones(len(pseudo), dtype=bool)
        self._start(nuisance, pseudo.shape[1])
        for j in range(pseudo.shape[1]):
            if only is not None and j not in only:  # another candidate serves this arm
                continue
            self._add_part(
                j,
                1.0,
                spec,
                pseudo[:, j],
                everyone,
                crossfit_seed=DR_CROSSFIT(nuisance.seed, j),
                refit_seed=DR_REFIT(nuisance.seed, j),
            )
        self._finish(do_refit)
