"""Fitted learners compiled for prediction: every outcome, arm and fold from one matrix pass.

A fitted :class:`UpliftModel` predicts an arm's effect as a weighted sum of member models
(boosters and linear models), and its interval from the same sum under each fold's models.
Asked member by member, one answer took 79 LightGBM calls. Here every booster tree of every
outcome (an outcome's arm, full or fold model, weights already in the leaf values) is read as
a lookup table (:mod:`._tree_tables`): a batch's trees cost a handful of numpy gathers, about
a tenth of LightGBM's walk over thousands of four-leaf trees. Trees too large for a table
(more than ``MAX_SPLITS`` splits, or linear trees) are laid out as one LightGBM model in the
multiclass layout, each "class" a slot of up to ``SLOT_TREES`` trees of one output, so one
``predict(raw_score=True)`` returns them all. Linear members (ridge, the constant) are
stacked into one matrix product; any other member is asked on its own. The outputs are then
combined by the learner's own step (:meth:`UpliftModel.combine`), so intervals are computed
by exactly the learner's formula. The booster members are :mod:`._compiled_trees`' and the
linear ones :mod:`._compiled_linear`'s; this module assembles them.

Trees add up, so the sums equal the members' weighted sums up to the order of floating point
additions (a few units in the 15th digit). Contributions are the learner's own: the TreeSHAP
values of the arm's booster trees (the booster :meth:`EffectLearner.contrib` asks), read from
per-tree tables of LightGBM's path-dependent TreeSHAP, and the ridge members' shares, which
are affine per feature, as one map per arm (a slope and offset per number, a table per
category) instead of each member building its design matrix.

The compiled form is pickled with the model it was built for; :attr:`CompiledEffects.form`
names its layout, and a model whose pickled form is older compiles again from its learners.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ._binning import Binning

# The member classes are also looked up here by models pickled before they had modules of
# their own: keep them importable from this module.
from ._compiled_linear import _CategoryLookup, _LinearStack
from ._compiled_trees import _BoosterContributions, _Forest, _Slots, _weighted_blocks
from ._regressors import GBMModel, RidgeModel

__all__ = ["CompiledEffects", "compile_effects", "FORM"]

# The compiled form's layout; a pickled form of another one is compiled again when loaded.
# 3: a model's form carries every outcome's fold models (forms of 2 had the primary's alone,
# so a model pickled with one could not give the secondary outcomes' intervals).
FORM = 3


def compile_effects(learners: Mapping, *, intervals=None, explained=None) -> "CompiledEffects":
    """Compile fitted :class:`UpliftModel` s (keyed by outcome) sharing features and arms.

    ``intervals`` names the outcomes whose intervals will be asked for (default: all); only
    theirs carry the fold models, which are three quarters of the trees. ``explained`` names
    the outcomes whose contribution tables are built now and pickled with the form (default:
    the first outcome, the one answers explain); others are built when first asked.

    Raises
    ------
    ValueError
        When the learners were fitted on different feature encodings or fold counts (then
        they cannot share one matrix; score them one by one).
    """
    return CompiledEffects(learners, intervals=intervals, explained=explained)


class CompiledEffects:
    """Effects, fold effects and intervals of several fitted learners from one encoded matrix.

    Parameters
    ----------
    learners : mapping of str to fitted UpliftModel
        Keyed by outcome; all must share the feature encoding, the arms and the fold count.
    intervals : iterable of str, optional
        Outcomes with intervals (default: all).
    explained : iterable of str, optional
        Outcomes whose contribution tables are built now (default: the first).
    """

    def __init__(self, learners: Mapping, *, intervals=None, explained=None):
        self.form = FORM
        self.learners = dict(learners)
        self.intervals = tuple(
            self.learners
            if intervals is None
            else [o for o in self.learners if o in set(intervals)]
        )
        self.explained = tuple(
            list(self.learners)[:1]
            if explained is None
            else [o for o in self.learners if o in set(explained)]
        )
        first = next(iter(self.learners.values()))
        self.encoder = first.encoder_
        self.arms = list(first.arms_)
        n_folds = None
        for outcome, learner in self.learners.items():
            if (
                learner.encoder_.feature_names != self.encoder.feature_names
                or learner.encoder_.categories != self.encoder.categories
            ):
                raise ValueError(f"the {outcome!r} learner was fitted on another feature encoding")
            if list(learner.arms_) != self.arms:
                raise ValueError(f"the {outcome!r} learner has other arms")
            folds = {
                len(part.fold_models)
                for arm_parts in learner.estimator_.parts
                for part in arm_parts
            }
            if len(folds) > 1 or (n_folds is not None and folds and folds != {n_folds}):
                raise ValueError("the learners differ in their number of folds")
            n_folds = folds.pop() if folds else n_folds
        self.n_folds = n_folds or 0
        # Outputs: for every outcome and arm, the full-data effect then each fold's effect
        # (folds only where an interval is wanted).
        self.outputs = [
            (outcome, j, fold)
            for outcome in self.learners
            for j in range(len(self.arms))
            for fold in (None, *self._folds(outcome))
        ]
        boosters, linear, other = self._members()
        p = len(self.encoder.feature_names)
        self._forest = _Forest(boosters, len(self.outputs), p) if boosters else None
        # the bins every table reads: the forest's, cut at all its trees' thresholds (the
        # contributions' trees are the same trees, merged per arm)
        self.binning = self._forest.binning if boosters else Binning([], p)
        self._linear = _LinearStack(linear, len(self.outputs), self.encoder) if linear else None
        self._other = other
        # the contributions an answer shows are the primary outcome's: built now, kept with
        # the pickled form (others are built when first asked)
        self._contrib_parts = {}
        for outcome in self.explained:
            for j in range(len(self.arms)):
                self._arm_contributions(outcome, j)

    @property
    def current(self) -> bool:
        """Whether this (possibly unpickled) form has the layout this code computes with."""
        return getattr(self, "form", None) == FORM

    def _folds(self, outcome) -> range:
        return range(self.n_folds if outcome in self.intervals else 0)

    # -- inputs ------------------------------------------------------------------------------
    def encode(self, X) -> np.ndarray:
        """The float matrix every learner reads (the learners' own encoder)."""
        return self.encoder.transform(X)

    def _members(self) -> tuple:
        """Every learner member as ``(output, weight, model)``: boosters, ridges, the rest."""
        index = {key: i for i, key in enumerate(self.outputs)}
        boosters, linear, other = [], [], []  # (output, weight, model) per member
        for outcome, learner in self.learners.items():
            for j, arm_parts in enumerate(learner.estimator_.parts):
                for part in arm_parts:
                    for fold, model in ((None, part.full_model), *enumerate(part.fold_models)):
                        if (outcome, j, fold) not in index:
                            continue
                        entry = (index[(outcome, j, fold)], part.weight, model)
                        if isinstance(model, GBMModel):
                            boosters.append(entry)
                        elif type(model) is RidgeModel:
                            linear.append(entry)
                        else:
                            other.append(entry)
        return boosters, linear, other

    def lightgbm_forest(self) -> tuple:
        """Every booster member's trees as one multiclass-layout LightGBM model, and the
        (slots, outputs) matrix summing its raw scores into this form's outputs: what the
        tables replace, for a benchmark that serves LightGBM's own call beside them."""
        boosters = self._members()[0]
        if not boosters:
            raise ValueError("this form has no booster members")
        header, tail, blocks = _weighted_blocks(boosters)
        slots = _Slots(header, tail, blocks, len(self.outputs))
        return slots.booster, slots.to_outputs

    # -- outputs -----------------------------------------------------------------------------
    def raw(self, M: np.ndarray) -> dict:
        """Per outcome, ``(effect (n, arms), fold effects (K, n, arms) or None)``, one pass."""
        n = M.shape[0]
        values = np.zeros((n, len(self.outputs)))
        if self._forest is not None:
            values += self._forest.predict(M, self._bins(M))
        if self._linear is not None:
            values += self._linear.predict(M)
        for output, weight, model in self._other:
            values[:, output] += weight * model.predict(M)
        arms = len(self.arms)
        out, start = {}, 0
        for outcome in self.learners:
            folds = len(self._folds(outcome))
            block = values[:, start : start + arms * (1 + folds)].reshape(n, arms, 1 + folds)
            out[outcome] = (block[:, :, 0], np.moveaxis(block[:, :, 1:], 2, 0) if folds else None)
            start += arms * (1 + folds)
        return out

    def predict(self, M: np.ndarray, *, alpha: float, intervals=None) -> dict:
        """Per outcome ``{"effect": (n, arms)}``; with ``"lower"``, ``"upper"`` for the
        outcomes in ``intervals`` (default: all compiled with intervals), by each learner's
        own combine step."""
        raw = self.raw(M)
        wanted = set(self.intervals if intervals is None else intervals)
        missing = wanted - set(self.intervals)
        if missing:
            raise ValueError(f"no intervals were compiled for {sorted(missing)}")
        out = {}
        for outcome, (effect, fold_effects) in raw.items():
            entry = {"effect": effect}
            if outcome in wanted:
                entry["lower"], entry["upper"] = self.learners[outcome].combine(
                    effect, fold_effects, alpha
                )
            out[outcome] = entry
        return out

    def _bins(self, M: np.ndarray) -> np.ndarray:
        # An answer predicts, then explains, from the same encoded matrix: its binning is kept
        # for the next call on equal values (a copy is compared, so a matrix changed in place
        # is binned again; equal values, NaN and -0.0 included, fall in equal bins). One tuple,
        # replaced whole: a request thread finding another's values bins its own.
        last = self.__dict__.get("_last_bins")
        if (
            last is not None
            and last[0].shape == M.shape
            and np.array_equal(last[0], M, equal_nan=True)
        ):
            return last[1]
        bins = self.binning.bins(M)
        bins.flags.writeable = False  # shared by the calls that find it
        self._last_bins = (np.array(M, dtype=float), bins)
        return bins

    def __getstate__(self):
        # Only the explained outcomes' contribution tables travel with the pickled form; the
        # last binning stays behind.
        state = dict(self.__dict__)
        state.pop("_last_bins", None)
        kept = self.explained
        state["_contrib_parts"] = {
            key: part for key, part in state.get("_contrib_parts", {}).items() if key[0] in kept
        }
        return state

    def contrib(self, M: np.ndarray, outcome: str, j: int) -> np.ndarray:
        """(n, features + 1): the learner's own contributions to arm ``j``'s effect vs control."""
        return self._arm_contributions(outcome, j).contrib(M, self._bins(M))

    def explain(self, M: np.ndarray, outcome: str, needs: Mapping) -> dict:
        """:meth:`contrib` of several arms, each for its own rows of ``M`` (``{arm index:
        row positions}``), from one binning of ``M``."""
        bins = self._bins(M)
        out = {}
        for j, rows in needs.items():
            rows = np.asarray(rows, dtype=np.intp)
            out[j] = self._arm_contributions(outcome, j).contrib(M[rows], bins[rows])
        return out

    def _arm_contributions(self, outcome: str, j: int) -> "_ArmContributions":
        parts = self.__dict__.setdefault("_contrib_parts", {})
        key = (outcome, j)
        if key not in parts:
            parts[key] = _ArmContributions(
                self.learners[outcome].estimator_._full_parts(j), self.encoder, self.binning
            )
        return parts[key]


class _ArmContributions:
    """One arm's contributions: its boosters' TreeSHAP, its ridge members as one affine map.

    A ridge member's share of feature ``j`` is ``coef · (Z_j(x) − z̄_j)``: for a number, affine
    in the value (a missing one counts as the mean); for a category, a lookup by code (an
    unseen or missing code matches no level). Its ``base`` is the intercept.
    """

    def __init__(self, parts, encoder, binning: Binning):
        p = len(encoder.feature_names)
        self.p = p
        self.trees = _BoosterContributions(
            [
                (part.weight, part.full_model)
                for part in parts
                if isinstance(part.full_model, GBMModel)
            ],
            p,
            binning,
        )
        linear = [
            (part.weight, part.full_model) for part in parts if type(part.full_model) is RidgeModel
        ]
        self.other = [
            (part.weight, part.full_model)
            for part in parts
            if not isinstance(part.full_model, GBMModel) and type(part.full_model) is not RidgeModel
        ]
        self.numeric = [j for j in range(p) if j not in encoder.categories]
        self.categorical = sorted(encoder.categories)
        self.has_linear = bool(linear)
        self.base = 0.0
        self.slope = np.zeros(len(self.numeric))
        self.offset = np.zeros(len(self.numeric))
        self.missing = np.zeros(len(self.numeric))
        size = {j: len(encoder.categories[j]) for j in self.categorical}
        self.size = size
        self.tables = {j: np.zeros(size[j] + 1) for j in self.categorical}
        for weight, model in linear:
            design, coef = model.design, weight * model.coef
            self.base += weight * model.intercept
            column = 0
            for j in range(design.p):
                if j in design.categorical:
                    table = self.tables[j]
                    for level in design.levels[j]:
                        table[:] -= coef[column] * model.z_mean[column]
                        if 0 <= level < size[j]:
                            table[level] += coef[column]
                        column += 1
                else:
                    k = self.numeric.index(j)
                    centre = model.z_mean[column]
                    self.slope[k] += coef[column] / design.scales[j]
                    self.offset[k] -= coef[column] * (design.means[j] / design.scales[j] + centre)
                    self.missing[k] -= coef[column] * centre
                    column += 1

        if self.categorical:
            self.lookup = _CategoryLookup(self.categorical, size, self.tables)

    def contrib(self, M: np.ndarray, bins: np.ndarray) -> np.ndarray:
        out = self.trees.contrib(M, bins)  # TreeSHAP of the arm's boosters, as the learner's
        if self.has_linear:
            numbers = M[:, self.numeric]
            absent = np.isnan(numbers)
            out[:, self.numeric] += np.where(
                absent, self.missing, np.where(absent, 0.0, numbers) * self.slope + self.offset
            )
            if self.categorical:
                out[:, self.categorical] += self.lookup.entries(M)
            out[:, -1] += self.base
        for weight, model in self.other:
            out += weight * model.contrib(M)
        return out
