"""T-learner: τ̂_a(x) = μ̂_a(x) − μ̂_control(x) from the shared per-arm outcome models.

Nothing new is learned here: the outcome models (control's fitted once) come from the first
stage, which cross-fitted every candidate regressor for every arm. A T-learner candidate is
one choice of control model and arm model; auto selection keeps, per arm, the pair with the
smallest doubly robust loss, since the pair best at predicting outcomes is not always the
pair whose difference best predicts the effect.
"""

from __future__ import annotations

import numpy as np

from ._base import EffectLearner, Part
from ._regressors import refit

__all__ = ["TLearner"]


class TLearner(EffectLearner):
    name = "t"

    def __init__(self, nuisance, control_fit, arm_fits, *, do_refit=True):
        """``arm_fits``: one CrossFit per non-control arm (None for arms it does not serve)."""
        self.control_fit = control_fit
        self.arm_fits = list(arm_fits)
        self.spec = (control_fit.spec, tuple(f.spec if f is not None else None
                                             for f in self.arm_fits))
        served = sorted({f.spec.label for f in self.arm_fits if f is not None})
        self.label = f"control {control_fit.spec.label}, arm {' / '.join(served)}"
        self._nuisance = nuisance
        n = len(nuisance.M)
        self.oof = np.column_stack([
            f.oof - control_fit.oof if f is not None else np.zeros(n) for f in self.arm_fits])
        self.parts = [
            [Part(1.0, None, f.fold_models), Part(-1.0, None, control_fit.fold_models)]
            if f is not None else [] for f in self.arm_fits
        ]
        self.crossfits = True
        if do_refit:
            self.refit()

    def refit(self, arms=None):
        """Refit (once, shared between candidates) the outcome models of the arms served."""
        nuisance = self._nuisance
        wanted = [j for j, f in enumerate(self.arm_fits)
                  if f is not None and (arms is None or j in arms)]
        for code, cross in [(0, self.control_fit)] + [(j + 1, self.arm_fits[j]) for j in wanted]:
            if cross.full_model is None:
                refit(cross, nuisance.matrix, nuisance.y, nuisance.codes == code,
                      seed=nuisance.seed + 101 * code + 50,
                      n_jobs=nuisance.n_jobs)
        for j in wanted:
            self.parts[j][0].full_model = self.arm_fits[j].full_model
            self.parts[j][1].full_model = self.control_fit.full_model
        self.crossfits, self._nuisance = None, None
        return self
