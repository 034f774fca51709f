"""T-learner: τ̂_a(x) = μ̂_a(x) − μ̂_control(x) from the shared per-arm outcome models.

Nothing is fitted here: the outcome models (control's fitted once) come from the first stage.
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
                refit(cross, nuisance.M, nuisance.y, rows, categorical=nuisance.categorical,
                      seed=nuisance.seed + 101 * a + 50, n_jobs=nuisance.n_jobs)
        control = nuisance.outcome[0]
        self.label = "outcome models: " + ", ".join(c.spec.label for c in nuisance.outcome)
        self.parts = [
            [Part(1.0, arm.full_model, arm.fold_models),
             Part(-1.0, control.full_model, control.fold_models)]
            for arm in nuisance.outcome[1:]
        ]
        self.oof = nuisance.mu[:, 1:] - nuisance.mu[:, :1]
        self.spec = None


