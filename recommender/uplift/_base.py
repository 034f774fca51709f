"""What every fitted learner hands the facade: effects, contributions, fold effects.

A learner (T, X, DR) turns the shared first stage (``Nuisance``) into, for each non-control
arm, a function τ̂_a(x). It keeps the models refitted on all rows (used for prediction and
explanation, so contributions decompose exactly what ``effect`` returns) and the K fold
models (used for out-of-fold effects in model selection and for jackknife intervals).
"""

from __future__ import annotations

import numpy as np

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

    def effect(self, M: np.ndarray) -> np.ndarray:
        out = np.zeros((M.shape[0], len(self.parts)))
        for j, arm_parts in enumerate(self.parts):
            for part in arm_parts:
                out[:, j] += part.weight * part.full_model.predict(M)
        return out

    def effect_of(self, M: np.ndarray, j: int) -> np.ndarray:
        out = np.zeros(M.shape[0])
        for part in self.parts[j]:
            out += part.weight * part.full_model.predict(M)
        return out

    def contrib(self, M: np.ndarray, j: int) -> np.ndarray:
        """(n, features + 1): per-feature contributions and a last base column for arm j."""
        out = None
        for part in self.parts[j]:
            piece = part.weight * part.full_model.contrib(M)
            out = piece if out is None else out + piece
        return out

    def fold_effects(self, M: np.ndarray) -> np.ndarray:
        """(K, n, arms - 1): the effect as each fold's models (trained without fold k) see it."""
        n_folds = len(self.parts[0][0].fold_models)
        out = np.zeros((n_folds, M.shape[0], len(self.parts)))
        for j, arm_parts in enumerate(self.parts):
            for part in arm_parts:
                for k, model in enumerate(part.fold_models):
                    out[k, :, j] += part.weight * model.predict(M)
        return out

    def drop_fold_models(self) -> None:
        for arm_parts in self.parts:
            for part in arm_parts:
                part.fold_models = []


class PerArmLearner(EffectLearner):
    """Each arm's effect from the candidate that won that arm's doubly robust loss.

    The loss is a sum over arms, so choosing per arm minimizes the total as well.
    """

    def __init__(self, chosen: list):
        self.chosen = chosen  # one fitted candidate per non-control arm
        self.parts = [learner.parts[j] for j, learner in enumerate(chosen)]
        self.oof = np.column_stack([learner.oof[:, j] for j, learner in enumerate(chosen)])
        names = {learner.name for learner in chosen}
        self.name = names.pop() if len(names) == 1 else "mixed"
        self.label = "; ".join(f"{learner.name}: {learner.label}" for learner in chosen)
        self.arm_learners = [(learner.name, learner.label) for learner in chosen]
