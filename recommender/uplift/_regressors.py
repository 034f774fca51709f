"""The base regressors every learner stage uses, with exact additive contributions.

``GBMSpec`` is LightGBM (categorical codes handled natively; TreeSHAP contributions via
``pred_contrib``); ``RidgeSpec`` is a ridge regression on standardized numbers and one-hot
categories (contributions are coefficient times centred value, summed per original feature);
``LogLinearSpec`` is a log-link linear model for positive outcomes (integrated gradients).
The two linear ones, with their models, are in :mod:`recommender.uplift._linear`.
All predict from the encoded float matrix without pandas, and ``contrib`` returns one column
per feature plus a last ``base`` column that sum exactly to ``predict``.

``crossfit`` fits one spec on K folds (early stopping on the held-out fold for LightGBM) and
returns out-of-fold predictions and the fold models; ``refit`` adds a model of all rows.
Every fit reads its rows from one ``TrainingMatrix``, which LightGBM bins once for all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np

from ._lightgbm_params import extra_problems, feature_count_problems

# The linear regressors are also looked up here by models pickled before they had a module of
# their own (and by the stages that pick a spec): keep them importable from this module.
from ._linear import (  # noqa: F401 - see above
    ConstantSpec,
    LinearDesign,
    LogLinearModel,
    LogLinearSpec,
    RidgeModel,
    RidgeSpec,
)

__all__ = [
    "GBMSpec",
    "RidgeSpec",
    "LogLinearSpec",
    "CrossFit",
    "TrainingMatrix",
    "crossfit",
    "refit",
]


class TrainingMatrix:
    """The encoded training rows, binned for LightGBM once and shared by every fit.

    A fit of one stage used to bin its own rows (find the histogram edges, bucket every
    value): measured at n = 20,000 with six arms, about 400 such constructions made a fifth of
    the whole fitting time. Now each fit takes its rows as a subset of one binned dataset,
    which costs a tenth as much; all stages then split on the same edges.
    """

    def __init__(self, M: np.ndarray, categorical):
        self.M = M
        self.categorical = list(categorical)
        self._binned: dict = {}

    def __len__(self) -> int:
        return len(self.M)

    def lightgbm(self, rows: np.ndarray, label, weight, params: dict) -> lgb.Dataset:
        """A constructed LightGBM dataset of ``rows`` with their label and weight.

        ``rows`` must be increasing: LightGBM sorts a subset's rows, while the label and weight
        are set in the order given.
        """
        if len(rows) > 1 and not np.all(np.diff(rows) > 0):
            raise ValueError("TrainingMatrix.lightgbm needs increasing row indices")
        key = tuple(sorted(params.items()))
        binned = self._binned.get(key)
        if binned is None:
            binned = lgb.Dataset(
                self.M,
                np.zeros(len(self.M)),
                params=dict(params),
                categorical_feature=self.categorical or "auto",
                free_raw_data=True,
            ).construct()
            self._binned[key] = binned
        subset = binned.subset(rows).construct()
        subset.set_label(label)
        if weight is not None:
            subset.set_weight(weight)
        return subset


# LightGBM parameters fixed when a Dataset is binned (a booster may not differ from its Dataset)
_DATASET_PARAMETERS = frozenset(
    {
        "max_bin",
        "max_bin_by_feature",
        "min_data_in_bin",
        "bin_construct_sample_cnt",
        "data_random_seed",
        "use_missing",
        "zero_as_missing",
        "feature_pre_filter",
        "linear_tree",
        "enable_bundle",
        "is_enable_sparse",
        "forcedbins_filename",
        "pre_partition",
        "precise_float_parser",
    }
)


def _frozen(value):
    """``value`` with its lists made tuples at every depth (``interaction_constraints`` is a
    list of lists), so that a spec holding it can be a dict key."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _lightgbm_value(value):
    """A frozen value as LightGBM takes it: a tuple of tuples back to a list of lists (LightGBM
    writes a nested tuple into its model text as ``(0,``, which it then cannot read back)."""
    if isinstance(value, tuple) and any(isinstance(v, tuple) for v in value):
        return [list(v) if isinstance(v, tuple) else v for v in value]
    return value


@dataclass(frozen=True)
class GBMSpec:
    """LightGBM settings; ``max_rounds`` is an upper bound, early stopping picks the rounds."""

    num_leaves: int = 15
    min_child_samples: int = 20
    learning_rate: float = 0.05
    max_rounds: int = 1000
    patience: int = 20
    lambda_l2: float = 1.0
    max_bin: int = 63  # coarser histograms: faster, and noise-level outcomes lose nothing
    extra: tuple = ()  # further LightGBM parameters, as (name, value) pairs

    def __post_init__(self):
        # pairs of a mapping or of YAML lists become hashable tuples: specs are dict keys
        pairs = self.extra.items() if isinstance(self.extra, dict) else self.extra
        if not isinstance(pairs, (list, tuple, type({}.items()))) or not all(
            isinstance(pair, (list, tuple)) and len(pair) == 2 for pair in pairs
        ):
            raise TypeError(
                f"GBMSpec extra={self.extra!r}; accepted: a mapping of LightGBM parameters to "
                "values, or a list of (name, value) pairs"
            )
        object.__setattr__(self, "extra", tuple((str(k), _frozen(v)) for k, v in pairs))

    def extra_problems(self) -> list[str]:
        """``name=value (accepted: ...)`` for each ``extra`` parameter LightGBM does not know,
        that a field or the learner already sets, or whose value LightGBM refuses (asked of
        LightGBM itself on a few rows), so a bad one is refused before any fit starts. A
        per-feature list is checked against X's columns by :meth:`feature_problems`."""
        return extra_problems(self.extra)

    def feature_problems(self, feature_names) -> list[str]:
        """``name=value (accepted: ...)`` for each per-feature ``extra`` parameter that does
        not fit ``feature_names`` (X's columns): the wrong length, or a column index past the
        last; checked when fitting, before any booster is built."""
        return feature_count_problems(self.extra, list(feature_names))

    @staticmethod
    def accepts(y: np.ndarray) -> bool:
        """Whether this regressor suits an arm with outcomes ``y`` (always)."""
        return True

    @property
    def label(self) -> str:
        extra = "".join(f", {k}={v}" for k, v in self.extra)
        return (
            f"gbm(leaves={self.num_leaves}, min_child={self.min_child_samples}, "
            f"lr={self.learning_rate}{extra})"
        )

    def params(self, seed: int, n_jobs: int) -> dict:
        params = dict(
            objective="regression",
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            learning_rate=self.learning_rate,
            lambda_l2=self.lambda_l2,
            max_bin=self.max_bin,
            min_data_per_group=20,
            cat_smooth=10.0,
            feature_pre_filter=False,  # one binned dataset serves every min_child_samples
            seed=seed,
            deterministic=True,
            force_col_wise=True,
            num_threads=n_jobs,
            verbose=-1,
        )
        params.update({k: _lightgbm_value(v) for k, v in self.extra})
        return params

    def dataset_params(self) -> dict:
        """The settings that decide the binning (shared by every spec with the same ones)."""
        params = {"max_bin": self.max_bin, "feature_pre_filter": False, "verbose": -1}
        params.update({k: _lightgbm_value(v) for k, v in self.extra if k in _DATASET_PARAMETERS})
        return params

    def fit(self, matrix, rows, y, weight, *, seed, n_jobs, rounds=None, valid=None):
        data = matrix.lightgbm(rows, y, weight, self.dataset_params())
        params = self.params(seed, n_jobs)
        if rounds is not None:
            booster = lgb.train(params, data, num_boost_round=max(int(rounds), 1))
            return GBMModel(booster), int(rounds)
        valid_rows, yv, wv = valid
        valid_set = matrix.lightgbm(valid_rows, yv, wv, self.dataset_params())
        booster = lgb.train(
            params,
            data,
            num_boost_round=self.max_rounds,
            valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(self.patience, verbose=False)],
        )
        best = booster.best_iteration or booster.current_iteration()
        return GBMModel(booster, best), best


class GBMModel:
    def __init__(self, booster: lgb.Booster, rounds: int | None = None):
        self.booster = booster
        self.rounds = rounds

    def predict(self, M: np.ndarray) -> np.ndarray:
        return self.booster.predict(M, num_iteration=self.rounds, num_threads=1)

    def contrib(self, M: np.ndarray) -> np.ndarray:
        return self.booster.predict(M, num_iteration=self.rounds, pred_contrib=True, num_threads=1)


@dataclass
class CrossFit:
    """Out-of-fold predictions for every row, fold models, the all-rows model and its loss."""

    spec: object
    oof: np.ndarray
    fold_models: list
    full_model: object
    loss: float  # mean squared held-out error on the rows the stage trains on
    rounds: list = field(default_factory=list)

    def fold_predictions(self, M: np.ndarray) -> np.ndarray:
        return np.stack([m.predict(M) for m in self.fold_models])


def crossfit(
    spec, matrix: TrainingMatrix, target, train_rows, folds, *, seed, n_jobs, weight=None
) -> CrossFit:
    """Fit ``spec`` on each fold's training rows (those in ``train_rows``), predict all rows
    out of fold (``full_model`` stays None until ``refit``).

    ``target`` and ``weight`` are full-length arrays; only ``train_rows`` entries are read.
    """
    M = matrix.M
    n = len(M)
    oof = np.empty(n)
    n_folds = int(folds.max()) + 1
    models, rounds = [], []
    held_out_error, held_out_weight = 0.0, 0.0
    for k in range(n_folds):
        fit_rows = np.flatnonzero(train_rows & (folds != k))
        valid_rows = np.flatnonzero(train_rows & (folds == k))
        w_fit = None if weight is None else weight[fit_rows]
        w_valid = None if weight is None else weight[valid_rows]
        model, used = spec.fit(
            matrix,
            fit_rows,
            target[fit_rows],
            w_fit,
            seed=seed + k,
            n_jobs=n_jobs,
            valid=(valid_rows, target[valid_rows], w_valid),
        )
        in_fold = folds == k
        oof[in_fold] = model.predict(M[in_fold])
        residual = target[valid_rows] - oof[valid_rows]
        wv = np.ones(residual.size) if w_valid is None else w_valid
        held_out_error += float(np.sum(wv * residual**2))
        held_out_weight += float(np.sum(wv))
        models.append(model)
        rounds.append(used)
    loss = held_out_error / max(held_out_weight, 1e-12)
    # a model that overflowed or failed to converge must never win a comparison
    loss = loss if np.isfinite(loss) and np.all(np.isfinite(oof)) else np.inf
    return CrossFit(spec, oof, models, None, loss, rounds)


def refit(
    cross: CrossFit, matrix: TrainingMatrix, target, train_rows, *, seed, n_jobs, weight=None
):
    """Fit the cross-fitted spec once more on all ``train_rows`` with the folds' mean rounds."""
    rounds = None if cross.rounds[0] is None else int(round(np.mean(cross.rounds)))
    rows = np.flatnonzero(train_rows)
    w_all = None if weight is None else weight[rows]
    model, _ = cross.spec.fit(
        matrix, rows, target[rows], w_all, seed=seed, n_jobs=n_jobs, rounds=rounds
    )
    cross.full_model = model
    return model


def merge_gbm(weighted: list) -> "GBMModel":
    """One booster whose prediction is Σ weight × booster(x), for a one-call prediction path.

    Boosted trees add up, so scaling every tree's leaf values by the weight and listing all
    trees in one model gives exactly the weighted sum; TreeSHAP contributions of the merged
    booster are the same weighted sum of each booster's contributions. The model text is
    LightGBM's own format; only leaf and internal values are rescaled.
    """
    header, tail, trees = None, None, []
    for weight, model in weighted:
        head, end, blocks = weighted_trees(model, weight)
        if header is None:
            header = "\n".join(
                line for line in head.split("\n") if not line.startswith("tree_sizes=")
            )
            tail = end
        trees.extend(blocks)
    body = "".join(f"Tree={k}\n{tree}\n\n\n" for k, tree in enumerate(trees))
    booster = lgb.Booster(model_str=header + body + tail)
    return GBMModel(booster)


def weighted_trees(model: "GBMModel", weight: float) -> tuple[str, str, list[str]]:
    """``model``'s trees as LightGBM model text, leaf values times ``weight``.

    Returns the text before the first tree, the text from "end of trees" on, and each tree's
    lines without its "Tree=k" line (rounds past the model's best iteration left out).
    """
    text = model.booster.model_to_string(num_iteration=model.rounds)
    start, end = text.index("\nTree=0\n") + 1, text.index("end of trees")
    trees = []
    for block in text[start:end].split("\n\n\n"):
        if not block.strip():
            continue
        lines = block.strip("\n").split("\n")[1:]  # drop the "Tree=k" line
        for i, line in enumerate(lines):
            key, _, values = line.partition("=")
            if key in ("leaf_value", "internal_value") and values.strip():
                lines[i] = key + "=" + " ".join(repr(weight * float(v)) for v in values.split(" "))
        trees.append("\n".join(lines))
    return text[:start], text[end:], trees
