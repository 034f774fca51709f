"""What every fitted learner hands the facade: effects, contributions, fold effects.

A learner (T, X, DR) turns the shared first stage (``Nuisance``) into, for each non-control
arm, a function τ̂_a(x). It keeps the models refitted on all rows (used for prediction and
explanation, so contributions decompose exactly what ``effect`` returns) and the K fold
models (used for out-of-fold effects in model selection and for jackknife intervals).
"""

from __future__ import annotations

import numpy as np

from ._regressors import GBMModel, merge_gbm

__all__ = ["EffectLearner", "Part", "PerArmLearner"]


class Part:
    """One additive piece of an arm's effect: ``weight * model(x)``."""

    def __init__(self, weight: float, full_model, fold_models):
        self.weight = float(weight)
        self.full_model = full_model
        self.fold_models = list(fold_models)


class EffectLearner:
    """τ̂_a(x) = Σ over parts of weight × model(x), one list of parts per non-control arm.

    Subclasses build ``parts`` and ``oof`` in their constructor from a ``Nuisance``.
    """

    name = "base"
    label = ""
    parts: list  # per non-control arm: list[Part]
    oof: np.ndarray  # (n, arms - 1) out-of-fold effects on the training rows

    fast_parts: list | None = None  # per arm: the same sum with its boosters merged into one

    def _full_parts(self, j: int) -> list:
        return self.fast_parts[j] if self.fast_parts is not None else self.parts[j]

    def effect(self, M: np.ndarray) -> np.ndarray:
        out = np.zeros((M.shape[0], len(self.parts)))
        for j in range(len(self.parts)):
            for part in self._full_parts(j):
                out[:, j] += part.weight * part.full_model.predict(M)
        return out

    def contrib(self, M: np.ndarray, j: int) -> np.ndarray:
        """(n, features + 1): per-feature contributions and a last base column for arm j."""
        out = None
        for part in self._full_parts(j):
            piece = part.weight * part.full_model.contrib(M)
            out = piece if out is None else out + piece
        return out

    def merge_boosters(self) -> None:
        """Merge each arm's LightGBM models into one booster (ridge parts stay apart).

        A prediction then costs one booster call per arm and an explanation one TreeSHAP
        call, whatever the number of averaged candidates and T-learner pairs.
        """
        fast = []
        for arm_parts in self.parts:
            boosters = [(p.weight, p.full_model) for p in arm_parts
                        if isinstance(p.full_model, GBMModel)]
            others = [p for p in arm_parts if not isinstance(p.full_model, GBMModel)]
            merged = [Part(1.0, merge_gbm(boosters), [])] if boosters else []
            fast.append(merged + others)
        self.fast_parts = fast

    def fold_effects(self, M: np.ndarray) -> np.ndarray:
        """(K, n, arms - 1): the effect as each fold's models (trained without fold k) see it."""
        n_folds = len(self.parts[0][0].fold_models)
        out = np.zeros((n_folds, M.shape[0], len(self.parts)))
        for j, arm_parts in enumerate(self.parts):
            for part in arm_parts:
                for k, model in enumerate(part.fold_models):
                    out[k, :, j] += part.weight * model.predict(M)
        return out



class PerArmLearner(EffectLearner):
    """Each arm's effect: the average of the candidates with the smallest doubly robust loss.

    The loss is a sum over arms, so choosing per arm minimizes the total as well; averaging
    the best few rather than keeping one alone spends less on the noise in the loss (the
    candidates' losses often differ by less than their standard error) and lowers variance.
    Contributions stay exact: an average of additive pieces is additive.
    """

    def __init__(self, chosen: list):
        self.chosen = chosen  # per non-control arm: the list of fitted candidates averaged
        self.parts = [
            [Part(part.weight / len(learners), part.full_model, part.fold_models)
             for learner in learners for part in learner.parts[j]]
            for j, learners in enumerate(chosen)
        ]
        self.oof = np.column_stack([
            np.mean([learner.oof[:, j] for learner in learners], axis=0)
            for j, learners in enumerate(chosen)])
        names = {learner.name for learners in chosen for learner in learners}
        self.name = names.pop() if len(names) == 1 else "mixed"
        self.label = "; ".join(" + ".join(f"{l.name}: {l.label}" for l in learners)
                               for learners in chosen)
        self.arm_learners = [
            "+".join(sorted({l.name for l in learners})) for learners in chosen]

    def release_training_data(self) -> None:
        """Drop the per-row training arrays (out-of-fold effects) once fitting is done.

        Prediction, explanation and intervals need only the models; the arrays would make
        every saved model grow with the training cohort.
        """
        self.oof = None
        for learners in self.chosen:
            for learner in learners:
                learner.oof = None
                for cross in [getattr(learner, "control_fit", None),
                              *getattr(learner, "arm_fits", [])]:
                    if cross is not None:
                        cross.oof = None

