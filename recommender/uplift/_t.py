"""T-learner: τ̂_a(x) = μ̂_a(x) − μ̂_control(x) from the shared per-arm outcome models.

Nothing new is learned here: the outcome models (control's fitted once) come from the first
stage, which cross-fitted every candidate regressor for every arm. A T-learner candidate is
one choice of control model and arm model; auto selection keeps, per arm, the pair with the
smallest doubly robust loss, since the pair best at predicting outcomes is not always the
pair whose difference best predicts the effect.
"""

from __future__ import annotations

from ._base import OUTCOME_REFIT, EffectLearner

__all__ = ["TLearner"]


class TLearner(EffectLearner):
    name = "t"

    def __init__(self, nuisance, control_fit, arm_fits, *, do_refit=True):
        """``arm_fits``: one CrossFit per non-control arm (None for arms it does not serve)."""
        self.control_fit = control_fit
        self.arm_fits = list(arm_fits)
        self.spec = (
            control_fit.spec,
            tuple(f.spec if f is not None else None for f in self.arm_fits),
        )
        served = sorted({f.spec.label for f in self.arm_fits if f is not None})
        self.label = f"control {control_fit.spec.label}, arm {' / '.join(served)}"
        codes, y, seed = nuisance.codes, nuisance.y, nuisance.seed
        self._start(nuisance, len(self.arm_fits))
        for j, arm_fit in enumerate(self.arm_fits):
            if arm_fit is None:  # another candidate serves this arm
                continue
            # the first stage's models, refitted once on all rows whoever asks first
            self._add_shared_part(
                j, 1.0, arm_fit, y, codes == j + 1, refit_seed=OUTCOME_REFIT(seed, j + 1)
            )
            self._add_shared_part(
                j, -1.0, control_fit, y, codes == 0, refit_seed=OUTCOME_REFIT(seed, 0)
            )
        self._finish(do_refit)
