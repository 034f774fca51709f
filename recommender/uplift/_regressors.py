"""The two base regressors every learner stage uses, with exact additive contributions.

``GBMSpec`` is LightGBM (categorical codes handled natively; TreeSHAP contributions via
``pred_contrib``); ``RidgeSpec`` is a ridge regression on standardized numbers and one-hot
categories (contributions are coefficient times centred value, summed per original feature).
Both predict from the encoded float matrix without pandas, and ``contrib`` returns one column
per feature plus a last ``base`` column that sum exactly to ``predict``.

``crossfit`` fits one spec on K folds (early stopping on the held-out fold for LightGBM) and
returns out-of-fold predictions, the fold models and a refit on all rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np

__all__ = ["GBMSpec", "RidgeSpec", "CrossFit", "crossfit", "refit"]


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
    extra: tuple = ()

    @property
    def label(self) -> str:
        extra = "".join(f", {k}={v}" for k, v in self.extra)
        return (f"gbm(leaves={self.num_leaves}, min_child={self.min_child_samples}, "
                f"lr={self.learning_rate}{extra})")

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
            seed=seed,
            deterministic=True,
            force_col_wise=True,
            num_threads=n_jobs,
            verbose=-1,
        )
        params.update(dict(self.extra))
        return params

    def fit(self, M, y, weight, *, categorical, seed, n_jobs, rounds=None, valid=None):
        data = lgb.Dataset(M, y, weight=weight, categorical_feature=categorical or "auto",
                           free_raw_data=True)
        params = self.params(seed, n_jobs)
        if rounds is not None:
            booster = lgb.train(params, data, num_boost_round=max(int(rounds), 1))
            return GBMModel(booster), int(rounds)
        Mv, yv, wv = valid
        valid_set = lgb.Dataset(Mv, yv, weight=wv, reference=data,
                                categorical_feature=categorical or "auto")
        booster = lgb.train(
            params, data, num_boost_round=self.max_rounds, valid_sets=[valid_set],
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


@dataclass(frozen=True)
class RidgeSpec:
    """Ridge on standardized numbers and one-hot categories; missing numbers get the mean."""

    alpha: float = 1.0

    @property
    def label(self) -> str:
        return f"ridge(alpha={self.alpha})"

    def fit(self, M, y, weight, *, categorical, seed, n_jobs, rounds=None, valid=None):
        return RidgeModel.fit(M, y, weight, categorical, self.alpha), None


@dataclass(frozen=True)
class ConstantSpec(RidgeSpec):
    """One effect for everyone: every slope shrunk to nothing, leaving the weighted mean.

    The no-heterogeneity baseline of model selection: a personalized model must beat it.
    """

    alpha: float = 1e12

    @property
    def label(self) -> str:
        return "constant (no heterogeneity)"


class RidgeModel:
    @classmethod
    def fit(cls, M, y, weight, categorical, alpha):
        self = cls()
        p = M.shape[1]
        self.categorical = set(categorical)
        self.levels = {}
        for j in self.categorical:
            seen = M[:, j][~np.isnan(M[:, j])]
            self.levels[j] = np.unique(seen).astype(int) if seen.size else np.array([], int)
        self.means = np.zeros(p)
        self.scales = np.ones(p)
        for j in range(p):
            if j in self.categorical:
                continue
            column = M[:, j]
            ok = ~np.isnan(column)
            self.means[j] = column[ok].mean() if ok.any() else 0.0
            scale = column[ok].std() if ok.any() else 0.0
            self.scales[j] = scale if scale > 0 else 1.0
        Z, groups = self._design(M)
        w = np.ones(len(y)) if weight is None else np.asarray(weight, float)
        self.z_mean = np.average(Z, axis=0, weights=w)
        Zc = Z - self.z_mean
        y_mean = np.average(y, weights=w)
        Zw = Zc if weight is None else Zc * w[:, None]
        gram = Zw.T @ Zc + alpha * np.eye(Z.shape[1])
        self.coef = np.linalg.solve(gram, Zw.T @ (y - y_mean))
        self.intercept = y_mean
        self.groups = groups
        self.p = p
        return self

    def _design(self, M):
        blocks, groups = [], []
        for j in range(M.shape[1]):
            column = M[:, j]
            if j in self.categorical:
                levels = self.levels[j]
                blocks.append((column[:, None] == levels[None, :]).astype(float))
                groups.extend([j] * len(levels))
            else:
                filled = np.where(np.isnan(column), self.means[j], column)
                blocks.append(((filled - self.means[j]) / self.scales[j])[:, None])
                groups.append(j)
        return np.hstack(blocks), np.asarray(groups, int)

    def predict(self, M):
        Z, _ = self._design(M)
        return self.intercept + (Z - self.z_mean) @ self.coef

    def contrib(self, M):
        Z, _ = self._design(M)
        parts = (Z - self.z_mean) * self.coef
        out = np.zeros((M.shape[0], self.p + 1))
        np.add.at(out.T, self.groups, parts.T)
        out[:, -1] = self.intercept
        return out


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


def crossfit(spec, M, target, train_rows, folds, *, categorical, seed, n_jobs, weight=None,
             refit=True) -> CrossFit:
    """Fit ``spec`` on each fold's training rows (those in ``train_rows``), predict all rows.

    ``target`` and ``weight`` are full-length arrays; only ``train_rows`` entries are read.
    """
    n = len(M)
    oof = np.empty(n)
    n_folds = int(folds.max()) + 1
    models, rounds = [], []
    held_out_error, held_out_weight = 0.0, 0.0
    for k in range(n_folds):
        fit_rows = train_rows & (folds != k)
        valid_rows = train_rows & (folds == k)
        w_fit = None if weight is None else weight[fit_rows]
        w_valid = None if weight is None else weight[valid_rows]
        model, used = spec.fit(
            M[fit_rows], target[fit_rows], w_fit, categorical=categorical, seed=seed + k,
            n_jobs=n_jobs, valid=(M[valid_rows], target[valid_rows], w_valid),
        )
        in_fold = folds == k
        oof[in_fold] = model.predict(M[in_fold])
        residual = target[valid_rows] - oof[valid_rows]
        wv = np.ones(residual.size) if w_valid is None else w_valid
        held_out_error += float(np.sum(wv * residual**2))
        held_out_weight += float(np.sum(wv))
        models.append(model)
        rounds.append(used)
    full = None
    if refit:
        mean_rounds = None if rounds[0] is None else int(round(np.mean(rounds)))
        w_all = None if weight is None else weight[train_rows]
        full, _ = spec.fit(M[train_rows], target[train_rows], w_all, categorical=categorical,
                           seed=seed + n_folds, n_jobs=n_jobs, rounds=mean_rounds)
    return CrossFit(spec, oof, models, full, held_out_error / max(held_out_weight, 1e-12), rounds)


def refit(cross: CrossFit, M, target, train_rows, *, categorical, seed, n_jobs, weight=None):
    """Fit the cross-fitted spec once more on all ``train_rows`` with the folds' mean rounds."""
    rounds = None if cross.rounds[0] is None else int(round(np.mean(cross.rounds)))
    w_all = None if weight is None else weight[train_rows]
    model, _ = cross.spec.fit(M[train_rows], target[train_rows], w_all, categorical=categorical,
                              seed=seed, n_jobs=n_jobs, rounds=rounds)
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
        text = model.booster.model_to_string(num_iteration=model.rounds)
        start, end = text.index("\nTree=0\n") + 1, text.index("end of trees")
        if header is None:
            header = "\n".join(line for line in text[:start].split("\n")
                               if not line.startswith("tree_sizes="))
            tail = text[end:]
        for block in text[start:end].split("\n\n\n"):
            if not block.strip():
                continue
            lines = block.strip("\n").split("\n")[1:]  # drop the "Tree=k" line
            for i, line in enumerate(lines):
                key, _, values = line.partition("=")
                if key in ("leaf_value", "internal_value") and values.strip():
                    lines[i] = key + "=" + " ".join(repr(weight * float(v))
                                                    for v in values.split(" "))
            trees.append(lines)
    body = "".join(f"Tree={k}\n" + "\n".join(lines) + "\n\n\n" for k, lines in enumerate(trees))
    booster = lgb.Booster(model_str=header + body + tail)
    return GBMModel(booster)
