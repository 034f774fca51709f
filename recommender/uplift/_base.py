"""What every fitted learner hands the facade: effects, contributions, fold effects.

A learner (T, X, DR) turns the shared first stage (``Nuisance``) into, for each non-control
arm, a function τ̂_a(x). It keeps the models refitted on all rows (used for prediction and
explanation, so contributions decompose exactly what ``effect`` returns) and the K fold
models (used for out-of-fold effects in model selection and for jackknife intervals).

The bookkeeping every learner shares lives here, in ``EffectLearner``: a learner only says
which targets it regresses on which rows (``_add_part``); the base cross-fits them, keeps the
fits still to be refitted on all rows (``PendingFit``) and refits them, for the arms the
learner was chosen for, in ``refit``. Every booster's seed comes from one ``SeedStream``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._regressors import CrossFit, GBMModel, crossfit, merge_gbm
from ._regressors import refit as refit_on_all_rows

__all__ = [
    "EffectLearner",
    "Part",
    "PerArmLearner",
    "PendingFit",
    "SeedStream",
    "OUTCOME_CROSSFIT",
    "OUTCOME_REFIT",
    "X_CROSSFIT",
    "X_REFIT",
    "DR_CROSSFIT",
    "DR_REFIT",
]


@dataclass(frozen=True)
class SeedStream:
    """Seeds of one stage: ``base + stride × arm + offset + part`` (a cross-fit adds its fold).

    Each stage draws from its own arithmetic stream so that adding an arm or a part does not
    shift the seeds of the others. The strides and offsets are those the learners have always
    used, kept so that a fixed ``random_state`` gives the same model as before.
    """

    stride: int
    offset: int

    def __call__(self, base: int, arm: int, part: int = 0) -> int:
        return base + self.stride * arm + self.offset + part


# first stage, per arm code (0 = control): the outcome models and their refit on all rows
OUTCOME_CROSSFIT = SeedStream(101, 0)
OUTCOME_REFIT = SeedStream(101, 50)
# X-learner, per non-control arm j; part 0 regresses the arm side, part 1 the control side
X_CROSSFIT = SeedStream(13, 14)
X_REFIT = SeedStream(17, 0)
# DR-learner final stage, per non-control arm j
DR_CROSSFIT = SeedStream(7, 1)
DR_REFIT = SeedStream(7, 3)


@dataclass
class PendingFit:
    """A cross-fitted part still waiting for its model of all rows."""

    arm: int  # non-control arm index
    part: int  # index in ``parts[arm]``
    cross: CrossFit
    target: np.ndarray
    rows: np.ndarray  # boolean, the rows the part trains on
    seed: int


class Part:
    """One additive piece of an arm's effect: ``weight * model(x)``."""

    def __init__(self, weight: float, full_model, fold_models):
        self.weight = float(weight)
        self.full_model = full_model
        self.fold_models = list(fold_models)


class EffectLearner:
    """τ̂_a(x) = Σ over parts of weight × model(x), one list of parts per non-control arm.

    Subclasses build their targets in their constructor: ``_start``, then one ``_add_part``
    (or ``_add_shared_part`` for a first-stage model) per piece, then ``_finish``, which
    refits unless the learner is a candidate whose refit waits for the selection.
    """

    name = "base"
    label = ""
    parts: list  # per non-control arm: list[Part]
    oof: np.ndarray  # (n, arms - 1) out-of-fold effects on the training rows

    fast_parts: list | None = None  # per arm: the same sum with its boosters merged into one

    # ------------------------------------------------------------ building (subclasses)
    def _start(self, nuisance, n_arms: int) -> None:
        self.parts = [[] for _ in range(n_arms)]
        self._oof = [np.zeros(len(nuisance.y)) for _ in range(n_arms)]
        self._pending: list[PendingFit] | None = []
        self._nuisance = nuisance

    def _add_part(
        self, arm: int, weight: float, spec, target, rows, *, crossfit_seed: int, refit_seed: int
    ) -> CrossFit:
        """Cross-fit ``spec`` on ``target`` over ``rows``; add ``weight`` × it to the arm."""
        nuisance = self._nuisance
        cross = crossfit(
            spec,
            nuisance.matrix,
            target,
            rows,
            nuisance.folds,
            seed=crossfit_seed,
            n_jobs=nuisance.n_jobs,
        )
        self._add_shared_part(arm, weight, cross, target, rows, refit_seed=refit_seed)
        return cross

    def _add_shared_part(
        self, arm: int, weight: float, cross: CrossFit, target, rows, *, refit_seed: int
    ) -> None:
        """Add ``weight`` × an existing cross-fit (refitted once however many learners share
        it: its model of all rows is kept on the ``CrossFit``)."""
        self.parts[arm].append(Part(weight, None, cross.fold_models))
        self._pending.append(
            PendingFit(arm, len(self.parts[arm]) - 1, cross, target, rows, refit_seed)
        )
        self._oof[arm] = self._oof[arm] + weight * cross.oof

    def _finish(self, do_refit: bool) -> None:
        self.oof = np.column_stack(self._oof)
        del self._oof
        if do_refit:
            self.refit()

    def refit(self, arms=None):
        """Fit the pending parts on all rows (only ``arms``, the arms this candidate serves)."""
        nuisance = self._nuisance
        for fit in self._pending:
            if arms is not None and fit.arm not in arms:
                continue
            if fit.cross.full_model is None:
                refit_on_all_rows(
                    fit.cross,
                    nuisance.matrix,
                    fit.target,
                    fit.rows,
                    seed=fit.seed,
                    n_jobs=nuisance.n_jobs,
                )
            self.parts[fit.arm][fit.part].full_model = fit.cross.full_model
        self._pending, self._nuisance = None, None
        return self

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
            boosters = [
                (p.weight, p.full_model) for p in arm_parts if isinstance(p.full_model, GBMModel)
            ]
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

    def __init__(self, chosen: list, *, undetected_variance=None, ranking_oof=None):
        self.chosen = chosen  # per non-control arm: the list of fitted candidates averaged
        # per arm: spread of effects one effect for everyone could not rule out (0 elsewhere)
        self.undetected_variance = (
            np.zeros(len(chosen))
            if undetected_variance is None
            else np.asarray(undetected_variance, dtype=float)
        )
        # per arm: the plausible candidates' distance from the chosen effect (set by selection)
        self.disagreement = np.zeros(len(chosen))
        self.parts = [
            [
                Part(part.weight / len(learners), part.full_model, part.fold_models)
                for learner in learners
                for part in learner.parts[j]
            ]
            for j, learners in enumerate(chosen)
        ]
        self.oof = np.column_stack(
            [
                np.mean([learner.oof[:, j] for learner in learners], axis=0)
                for j, learners in enumerate(chosen)
            ]
        )
        names = {learner.name for learners in chosen for learner in learners}
        self.name = names.pop() if len(names) == 1 else "mixed"
        self.label = "; ".join(
            " + ".join(f"{l.name}: {l.label}" for l in learners) for learners in chosen
        )
        self.arm_learners = ["+".join(sorted({l.name for l in learners})) for learners in chosen]
        # per arm: out-of-fold effects that order people for the held-out bias check (the
        # challenger's for an arm given one effect for everyone, whose own are all alike)
        # (``ranking_oof``: per arm an array, or None for the arm's own)
        ranking_oof = ranking_oof or [None] * len(chosen)
        self.ranking_oof = np.column_stack(
            [self.oof[:, j] if r is None else r for j, r in enumerate(ranking_oof)]
        )

    def release_training_data(self) -> None:
        """Drop the per-row training arrays (out-of-fold effects) once fitting is done.

        Prediction, explanation and intervals need only the models; the arrays would make
        every saved model grow with the training cohort.
        """
        self.oof = self.ranking_oof = None
        for learners in self.chosen:
            for learner in learners:
                learner.oof = None
                for cross in [
                    getattr(learner, "control_fit", None),
                    *getattr(learner, "arm_fits", []),
                ]:
                    if cross is not None:
                        cross.oof = None
