"""T-learner: τ̂_a(x) = μ̂_a(x) − μ̂_control(x) from the shared per-arm outcome models.

Nothing new is learned here: the outcome models (control's fitted once) come from the first
stage; when a pooled m(x) is used it cancels in the difference, so τ̂_a = r_a − r_control
and two models make (and explain) each effect either way.
"""

from __future__ import annotations


from ._base import EffectLearner, Part
from ._regressors import refit

__all__ = ["TLearner"]


class TLearner(EffectLearner):
    name = "t"

    def __init__(self, nuisance):
        for a, cross in enumerate(nuisance.outcome):
            if cross.full_model is None:
                rows = nuisance.codes == a
                refit(cross, nuisance.M, nuisance.y - nuisance.pooled, rows, categorical=nuisance.categorical,
                      seed=nuisance.seed + 101 * a + 50, n_jobs=nuisance.n_jobs)
        control = nuisance.outcome[0]
        self.label = "outcome models chosen per arm by held-out error (outcome_selection_)"
        self.parts = [
            [Part(1.0, arm.full_model, arm.fold_models),
             Part(-1.0, control.full_model, control.fold_models)]
            for arm in nuisance.outcome[1:]
        ]
        self.oof = nuisance.mu[:, 1:] - nuisance.mu[:, :1]
        self.spec = None


