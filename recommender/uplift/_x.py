"""X-learner: impute each person's effect from the other group's outcome model, then regress.

For arm a: among its own rows the imputed effect is y − μ̂_control(x); among control rows it
is μ̂_a(x) − y (both μ̂ out-of-fold). One regression per group, combined as
τ̂ = g τ̂_control-side + (1 − g) τ̂_arm-side with g the arm's share of the pair, a constant
weight, which keeps the prediction path free of a propensity model and the contributions
exactly additive. (As Künzel et al. weight by the propensity: the arm side's targets rest on
the control model, fitted on the control rows, so it gets the control's share 1 − g, and the
control side, resting on the arm's model, gets the arm's share g.)
"""

from __future__ import annotations

from ._base import X_CROSSFIT, X_REFIT, EffectLearner

__all__ = ["XLearner", "side_weights"]


def side_weights(n_arm: int, n_control: int) -> tuple[float, float]:
    """(weight of the arm-side model, weight of the control-side model): (1 − g, g), with g
    the arm's share of the pair's rows."""
    g = n_arm / (n_arm + n_control)
    return 1.0 - g, g


class XLearner(EffectLearner):
    name = "x"

    def __init__(self, nuisance, spec, *, do_refit=True, only=None):
        self.spec = spec
        self.label = spec.label
        codes, y, mu, seed = nuisance.codes, nuisance.y, nuisance.mu, nuisance.seed
        control_rows = codes == 0
        self._start(nuisance, len(nuisance.arms) - 1)
        for j in range(len(nuisance.arms) - 1):
            if only is not None and j not in only:  # another candidate serves this arm
                continue
            arm_rows = codes == j + 1
            arm_weight, control_weight = side_weights(int(arm_rows.sum()), int(control_rows.sum()))
            sides = (
                (arm_weight, y - mu[:, 0], arm_rows),  # read only on arm rows
                (control_weight, mu[:, j + 1] - y, control_rows),
            )  # only on control rows
            for part, (weight, target, rows) in enumerate(sides):
                self._add_part(
                    j,
                    weight,
                    spec,
                    target,
                    rows,
                    crossfit_seed=X_CROSSFIT(seed, j, part),
                    refit_seed=X_REFIT(seed, j, part),
                )
        self._finish(do_refit)
