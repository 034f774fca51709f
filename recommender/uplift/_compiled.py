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
by exactly the learner's formula.

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

import lightgbm as lgb
import numpy as np

from ._regressors import GBMModel, RidgeModel, weighted_trees
from ._tree_tables import Binning, TreeContributions, TreeSums, parse_trees

__all__ = ["CompiledEffects", "compile_effects", "SLOT_TREES", "FORM"]

# The compiled form's layout; a pickled form of another one is compiled again when loaded.
FORM = 2

# Pattern bits per table column: a column packs trees of one output whose splits add up to
# at most this many (its table has 2^TABLE_BITS entries). Measured on the demo model, 1,000
# rows: 10 bits 15 ms in 3.4 MB of tables, 12 bits 14 ms in 24 MB.
TABLE_BITS = 10

# Trees per slot. LightGBM's multiclass layout needs the same number of trees in every class,
# so short outputs are padded with one-leaf trees of value 0; chunking long outputs into slots
# of this size bounds the padding to less than one slot per output.
SLOT_TREES = 32

_EMPTY_TREE = (
    "num_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\n"
    "decision_type=\nleft_child=\nright_child=\nleaf_value=0\nleaf_weight=\n"
    "leaf_count=0\ninternal_value=\ninternal_weight=\ninternal_count=\nis_linear=0\n"
    "shrinkage=1"
)


def compile_effects(learners: Mapping, *, intervals=None) -> "CompiledEffects":
    """Compile fitted :class:`UpliftModel` s (keyed by outcome) sharing features and arms.

    ``intervals`` names the outcomes whose intervals will be asked for (default: all); only
    theirs carry the fold models, which are three quarters of the trees.

    Raises
    ------
    ValueError
        When the learners were fitted on different feature encodings or fold counts (then
        they cannot share one matrix; score them one by one).
    """
    return CompiledEffects(learners, intervals=intervals)


class CompiledEffects:
    """Effects, fold effects and intervals of several fitted learners from one encoded matrix.

    Parameters
    ----------
    learners : mapping of str to fitted UpliftModel
        Keyed by outcome; all must share the feature encoding, the arms and the fold count.
    intervals : iterable of str, optional
        Outcomes with intervals (default: all).
    """

    def __init__(self, learners: Mapping, *, intervals=None):
        self.form = FORM
        self.learners = dict(learners)
        self.intervals = tuple(
            self.learners
            if intervals is None
            else [o for o in self.learners if o in set(intervals)]
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
        for outcome in self.intervals[:1]:
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
        # Only the primary outcome's contribution tables travel with the pickled form; the
        # last binning stays behind.
        state = dict(self.__dict__)
        state.pop("_last_bins", None)
        kept = self.intervals[:1]
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


def _weighted_blocks(weighted) -> tuple:
    """``(header, tail, [(index, tree text)])`` of weighted boosters' trees, in order."""
    header = tail = None
    blocks = []
    for key, weight, model in weighted:
        head, end, trees = weighted_trees(model, weight)
        if header is None:
            header, tail = head, end
        blocks.extend((key, tree) for tree in trees)
    return header, tail, blocks


def _model_text(header: str, tail: str, trees, *, classes: int = 1) -> str:
    """LightGBM model text of ``trees`` (one per class per iteration) under ``header``."""
    kept = []
    for line in header.split("\n"):
        if line.startswith("tree_sizes="):
            continue
        if classes > 1:
            if line.startswith("num_class="):
                line = f"num_class={classes}"
            elif line.startswith("num_tree_per_iteration="):
                line = f"num_tree_per_iteration={classes}"
            elif line.startswith("objective="):
                line = f"objective=multiclass num_class:{classes}"
        kept.append(line)
    body = "".join(f"Tree={k}\n{tree}\n\n\n" for k, tree in enumerate(trees))
    return "\n".join(kept) + body + tail


class _Forest:
    """Every booster member's trees: small ones as tables, the others in one LightGBM model."""

    def __init__(self, members, n_outputs: int, n_features: int):
        header, tail, blocks = _weighted_blocks(members)
        trees = parse_trees([text for _, text in blocks])
        binning = Binning(trees, n_features)
        tabled = [k for k, tree in enumerate(trees) if binning.usable(tree)]
        self.binning = binning
        self.sums = TreeSums(
            [trees[k] for k in tabled],
            [blocks[k][0] for k in tabled],
            n_outputs,
            binning,
            bits=TABLE_BITS,
        )
        kept = set(tabled)
        rest = [blocks[k] for k in range(len(blocks)) if k not in kept]
        self.slots = _Slots(header, tail, rest, n_outputs) if rest else None

    def predict(self, M: np.ndarray, bins: np.ndarray) -> np.ndarray:
        out = self.sums.predict(bins)
        if self.slots is not None:
            out += self.slots.predict(M)
        return out


class _Slots:
    """Trees as slots of one multiclass-layout LightGBM model: one call sums every output."""

    def __init__(self, header: str, tail: str, blocks, n_outputs: int):
        per_output: dict[int, list[str]] = {}
        for output, tree in blocks:
            per_output.setdefault(output, []).append(tree)
        slots, slot_output = [], []
        for output in sorted(per_output):
            trees = per_output[output]
            for s in range(0, len(trees), SLOT_TREES):
                slots.append(trees[s : s + SLOT_TREES])
                slot_output.append(output)
        depth = max(len(slot) for slot in slots)
        n_slots = len(slots)
        body = [
            slot[it] if it < len(slot) else _EMPTY_TREE for it in range(depth) for slot in slots
        ]
        self.booster = lgb.Booster(model_str=_model_text(header, tail, body, classes=n_slots))
        self.to_outputs = np.zeros((n_slots, n_outputs))
        self.to_outputs[np.arange(n_slots), slot_output] = 1.0
        self.n_slots = n_slots

    def predict(self, M: np.ndarray) -> np.ndarray:
        raw = self.booster.predict(M, raw_score=True, num_threads=1)
        return raw.reshape(M.shape[0], self.n_slots) @ self.to_outputs


class _BoosterContributions:
    """TreeSHAP of weighted boosters' sum: small trees from tables, the others by LightGBM."""

    def __init__(self, weighted, n_features: int, binning: Binning):
        self.n_features = n_features
        self.tables = self.booster = None
        if not weighted:
            return
        header, tail, blocks = _weighted_blocks([(None, w, m) for w, m in weighted])
        trees = parse_trees([text for _, text in blocks])
        # a tree cut elsewhere than the bins (not one of the forest's) is LightGBM's to explain
        usable = [binning.usable(tree) for tree in trees]
        self.tables = TreeContributions(
            [tree for tree, ok in zip(trees, usable) if ok],
            binning,
            n_features,
            bits=TABLE_BITS,
        )
        rest = [text for (_, text), ok in zip(blocks, usable) if not ok]
        if rest:
            self.booster = lgb.Booster(model_str=_model_text(header, tail, rest))

    def contrib(self, M: np.ndarray, bins: np.ndarray) -> np.ndarray:
        if self.tables is None:
            return np.zeros((M.shape[0], self.n_features + 1))
        out = self.tables.contrib(bins)
        if self.booster is not None:
            out += self.booster.predict(M, pred_contrib=True, num_threads=1)
        return out


class _LinearStack:
    """Ridge members as one affine map: constants, slopes on numbers, tables on categories.

    A ridge model predicts ``b + (Z(x) − z̄)·w`` where ``Z`` standardizes numbers (a missing
    number counts as the mean) and one-hot encodes categories (an unseen code is all zeros);
    per feature that is affine in a number, or a lookup by category code.
    """

    def __init__(self, members, n_outputs: int, encoder):
        p = len(encoder.feature_names)
        self.categorical = sorted(encoder.categories)
        self.numeric = [j for j in range(p) if j not in encoder.categories]
        self.levels = {j: len(encoder.categories[j]) for j in self.categorical}
        self.constant = np.zeros(n_outputs)
        self.slope = np.zeros((len(self.numeric), n_outputs))
        self.missing = np.zeros((len(self.numeric), n_outputs))
        self.tables = {j: np.zeros((self.levels[j] + 1, n_outputs)) for j in self.categorical}
        for output, weight, model in members:
            design, coef = model.design, weight * model.coef
            self.constant[output] += weight * model.intercept - model.z_mean @ coef
            column = 0
            for j in range(design.p):
                if j in design.categorical:
                    for level in design.levels[j]:
                        if 0 <= level < self.levels.get(j, 0):
                            self.tables[j][level, output] += coef[column]
                        column += 1
                else:
                    k = self.numeric.index(j)
                    a = coef[column] / design.scales[j]
                    self.slope[k, output] += a
                    shift = a * design.means[j]
                    self.constant[output] -= shift
                    self.missing[k, output] += shift  # a missing number is the mean: term 0
                    column += 1

    def predict(self, M: np.ndarray) -> np.ndarray:
        numbers = M[:, self.numeric]
        absent = np.isnan(numbers)
        out = self.constant + np.where(absent, 0.0, numbers) @ self.slope + absent @ self.missing
        if self.categorical:
            if "_lookup" not in self.__dict__:
                self._lookup = _CategoryLookup(self.categorical, self.levels, self.tables)
            out += self._lookup.values(M)
        return out


class _CategoryLookup:
    """Every categorical feature's table stacked into one, read by one gather per batch.

    A code that is missing, negative or past the feature's levels reads the feature's last
    row (an unseen category: no level matches).
    """

    def __init__(self, categorical, sizes: Mapping, tables: Mapping):
        self.columns = list(categorical)
        self.sizes = np.array([sizes[j] for j in self.columns], dtype=float)
        blocks = [tables[j] for j in self.columns]
        self.offsets = np.cumsum([0] + [len(b) for b in blocks[:-1]]).astype(np.intp)
        self.table = np.concatenate(blocks)

    def entries(self, M: np.ndarray) -> np.ndarray:
        """(n, categorical features, ...): each row's entry of each feature's table."""
        codes = M[:, self.columns]
        unseen = ~((codes >= 0) & (codes < self.sizes))  # NaN compares False: unseen
        index = np.where(unseen, self.sizes, codes).astype(np.intp) + self.offsets
        return self.table[index]

    def values(self, M: np.ndarray) -> np.ndarray:
        """(n, ...): the sum over the categorical features of each row's table entry."""
        return self.entries(M).sum(axis=1)
