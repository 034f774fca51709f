"""Booster trees read as lookup tables answer exactly what LightGBM answers.

The compiled prediction form reads small trees as tables (``recommender.uplift._tree_tables``)
and leaves larger ones to LightGBM. Boosters are trained here with what served models rarely
meet: missing values (splits with a missing direction), zero read as missing, categorical
splits, trees too large for a table. Rows sit at, just below and just above every threshold,
or carry NaN, infinities, values LightGBM reads as zero, and category codes that are negative,
fractional, unseen or missing. Predictions and TreeSHAP contributions equal LightGBM's to
1e-9, and the contributions sum to the prediction.
"""

import lightgbm as lgb
import numpy as np
import pytest

from recommender.uplift._compiled_trees import _BoosterContributions, _Forest
from recommender.uplift._regressors import GBMModel, weighted_trees
from recommender.uplift._lightgbm_trees import MAX_SPLITS, parse_trees
from recommender.uplift._tree_tables import _CHUNK_ROWS

TOLERANCE = 1e-9
CATEGORY = 1  # the categorical column


def _cohort(seed: int, *, missing: bool):
    rng = np.random.default_rng(seed)
    n = 4000
    X = np.column_stack(
        [
            rng.normal(size=n),
            rng.integers(0, 7, n).astype(float),
            rng.choice([0.0, 1.0, 2.5, -1.0], n),
            rng.uniform(-1, 1, n),
        ]
    )
    y = (
        X[:, 0]
        + 1.5 * np.isin(X[:, 1], [2, 5])
        + X[:, 2] * X[:, 3]
        + (X[:, 2] == 0)
        + rng.normal(scale=0.3, size=n)
    )
    if missing:
        X[rng.random(n) < 0.15, 0] = np.nan
        X[rng.random(n) < 0.15, 3] = np.nan
        X[rng.random(n) < 0.1, CATEGORY] = np.nan
    return X, y


def _booster(leaves: int, *, missing: bool, zero_as_missing: bool, seed: int) -> GBMModel:
    X, y = _cohort(seed, missing=missing)
    params = {
        "objective": "regression",
        "num_leaves": leaves,
        "min_data_in_leaf": 15,
        "learning_rate": 0.2,
        "zero_as_missing": zero_as_missing,
        "max_cat_to_onehot": 2,
        "seed": seed,
        "deterministic": True,
        "num_threads": 1,
        "verbose": -1,
    }
    data = lgb.Dataset(X, y, categorical_feature=[CATEGORY], params=params)
    return GBMModel(lgb.train(params, data, num_boost_round=30))


def _trees(model: GBMModel):
    return parse_trees(weighted_trees(model, 1.0)[2])


def _hostile_rows(models, seed: int) -> np.ndarray:
    """Training-like rows, then each column set to every threshold, its neighbours, and the
    values LightGBM treats specially."""
    rng = np.random.default_rng(seed)
    base, _ = _cohort(seed + 100, missing=False)
    rows = [base[:300]]
    special = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40, 1e-35, -1e-35]
    codes = [-1.0, -0.5, 0.5, 2.7, 6.0, 7.0, 40.0, 1e10, -1e10, np.nan, np.inf]
    for column in range(base.shape[1]):
        if column == CATEGORY:
            values = codes + list(range(8))
        else:
            thresholds = {
                float(tree.threshold[node])
                for model in models
                for tree in _trees(model)
                for node in range(tree.splits)
                if int(tree.feature[node]) == column and not tree.is_categorical(node)
            }
            values = special + [
                v
                for t in thresholds
                for v in (t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf))
            ]
        block = base[rng.integers(0, len(base), len(values))].copy()
        block[:, column] = values
        rows.append(block)
    return np.vstack(rows)


CASES = [
    pytest.param(4, False, False, id="four-leaves"),
    pytest.param(7, True, False, id="seven-leaves-missing"),
    pytest.param(7, False, True, id="seven-leaves-zero-as-missing"),
    pytest.param(9, True, True, id="nine-leaves-both"),
    pytest.param(31, True, False, id="large-trees-left-to-lightgbm"),
]


@pytest.mark.parametrize("leaves, missing, zero_as_missing", CASES)
def test_tables_predict_and_explain_what_lightgbm_does(leaves, missing, zero_as_missing):
    first = _booster(leaves, missing=missing, zero_as_missing=zero_as_missing, seed=1)
    second = _booster(leaves, missing=missing, zero_as_missing=zero_as_missing, seed=2)
    # the cases are what they claim: categorical splits, missing directions, large trees
    trees = _trees(first) + _trees(second)
    kinds = {(int(t.decision[k]) >> 2) & 3 for t in trees for k in range(t.splits)}
    assert any(t.is_categorical(k) for t in trees for k in range(t.splits))
    assert (2 in kinds) == missing or zero_as_missing
    assert (1 in kinds) == zero_as_missing
    large = any(t.splits > MAX_SPLITS for t in trees)
    assert large == (leaves - 1 > MAX_SPLITS)

    # two outputs: 0.3 x first + 0.7 x second, and the first alone
    members = [(0, 0.3, first), (0, 0.7, second), (1, 1.0, first)]
    forest = _Forest(members, 2, 4)
    assert (forest.slots is not None) == large
    X = _hostile_rows([first, second], seed=3)
    got = forest.predict(X, forest.binning.bins(X))
    np.testing.assert_allclose(
        got[:, 0], 0.3 * first.predict(X) + 0.7 * second.predict(X), atol=TOLERANCE, rtol=0
    )
    np.testing.assert_allclose(got[:, 1], first.predict(X), atol=TOLERANCE, rtol=0)

    explain = _BoosterContributions([(0.3, first), (0.7, second)], 4, forest.binning)
    assert (explain.booster is not None) == large
    parts = explain.contrib(X, forest.binning.bins(X))
    np.testing.assert_allclose(
        parts, 0.3 * first.contrib(X) + 0.7 * second.contrib(X), atol=TOLERANCE, rtol=0
    )
    np.testing.assert_allclose(parts.sum(axis=1), got[:, 0], atol=TOLERANCE, rtol=0)


def test_few_rows_are_binned_like_a_batch():
    model = _booster(7, missing=True, zero_as_missing=True, seed=4)
    forest = _Forest([(0, 1.0, model)], 1, 4)
    X = _hostile_rows([model], seed=5)
    batch = forest.binning.bins(X)
    for start in range(0, len(X), 7):
        np.testing.assert_array_equal(
            forest.binning.bins(X[start : start + 7]), batch[start : start + 7]
        )
        np.testing.assert_array_equal(
            forest.binning.bins(X[start : start + 1]), batch[start : start + 1]
        )


def test_trees_cut_elsewhere_than_the_bins_are_explained_by_lightgbm():
    seen = _booster(4, missing=False, zero_as_missing=False, seed=6)
    other = _booster(4, missing=True, zero_as_missing=False, seed=7)
    forest = _Forest([(0, 1.0, seen)], 1, 4)
    explain = _BoosterContributions([(1.0, seen), (0.5, other)], 4, forest.binning)
    assert explain.booster is not None  # the other booster's thresholds are not bins
    X = _hostile_rows([seen, other], seed=8)
    np.testing.assert_allclose(
        explain.contrib(X, forest.binning.bins(X)),
        seen.contrib(X) + 0.5 * other.contrib(X),
        atol=TOLERANCE,
        rtol=0,
    )


def test_a_batch_read_in_slices_gives_each_row_what_it_gets_alone():
    # A batch's patterns are read a slice of rows at a time (to stay in cache): no row may
    # get another's sums or contributions, nor other bits than alone, at a slice's edges too.
    model = _booster(7, missing=True, zero_as_missing=False, seed=9)
    forest = _Forest([(0, 1.0, model), (1, 0.5, model)], 2, 4)
    explain = _BoosterContributions([(1.0, model)], 4, forest.binning)
    X = _hostile_rows([model], seed=10)
    assert len(X) > 2 * _CHUNK_ROWS and len(X) % _CHUNK_ROWS  # slices, a shorter last one
    bins = forest.binning.bins(X)
    sums, parts = forest.predict(X, bins), explain.contrib(X, bins)
    for k in range(len(X)):
        alone = slice(k, k + 1)
        np.testing.assert_array_equal(forest.predict(X[alone], bins[alone]), sums[alone])
        np.testing.assert_array_equal(explain.contrib(X[alone], bins[alone]), parts[alone])
