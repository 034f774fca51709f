"""UpliftModel as a data scientist uses it on their own table: scikit-learn habits, pandas
inputs of every kind, and refusals that name the column, arm or rows rather than a wrong answer.
"""

import copy
import io
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from recommender.errors import InputError
from recommender.uplift import (
    GBMSpec,
    LogLinearSpec,
    RidgeSpec,
    UpliftModel,
    compile_effects,
    doubly_robust_scores,
)
from recommender.uplift._synthetic import make_uplift_cohort

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cohort():
    return make_uplift_cohort(300, arms=("none", "a", "b"), seed=1)


@pytest.fixture(scope="module")
def fitted(cohort):
    return UpliftModel(learner="t").fit(*cohort[:3])


def outputs(model, X):
    lower, upper = model.predict_interval(X)
    parts = [model.contributions(X, arm) for arm in model.arms_]
    return [model.predict_effect(X), lower, upper, *parts]


# ---------------------------------------------------------------- scikit-learn habits
@pytest.mark.parametrize(
    "revive",
    [
        lambda m: pickle.loads(pickle.dumps(m)),
        lambda m: copy.deepcopy(m),
        lambda m: joblib.load(io.BytesIO(_joblib_bytes(m))),
    ],
    ids=["pickle", "deepcopy", "joblib"],
)
def test_a_revived_model_predicts_what_the_fitted_one_does(cohort, fitted, revive):
    X = cohort[0].head(40)
    for got, want in zip(outputs(revive(fitted), X), outputs(fitted, X)):
        np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=0, atol=1e-12)


def _joblib_bytes(model) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def test_clone_of_a_fitted_model_is_unfitted_with_its_parameters(fitted):
    copied = clone(fitted.set_params(n_folds=3))
    assert copied.get_params() == fitted.get_params()
    assert not hasattr(copied, "estimator_")
    assert repr(UpliftModel(learner="x", n_folds=4)) == "UpliftModel(learner='x', n_folds=4)"
    with pytest.raises(ValueError, match="Invalid parameter 'folds'"):
        UpliftModel().set_params(folds=4)


def test_refit_on_other_arms_and_columns_forgets_the_first_fit(cohort):
    X, t, y, _, _ = cohort
    model = UpliftModel(learner="t").fit(X, t, y)
    X4, t4, y4, _, _ = make_uplift_cohort(400, arms=(0, 1, 2, 3), seed=2)
    assert model.set_params(control=0).fit(X4.drop(columns="age"), t4, y4) is model
    assert model.arms_ == [1, 2, 3] and "age" not in model.feature_names_
    with pytest.raises(InputError, match=r"unexpected \['age'\]"):
        model.predict_effect(X)


# ---------------------------------------------------------------- inputs matched to rows
@pytest.mark.parametrize("name", ["treatment", "y", "propensity"])
def test_a_series_whose_index_is_not_xs_is_refused_not_matched_by_position(cohort, name):
    X, t, y, p, _ = cohort
    inputs = {"treatment": t, "y": y, "propensity": p}
    inputs[name] = pd.Series(inputs[name], index=X.index[::-1])  # e.g. sorted apart from X
    with pytest.raises(InputError, match=rf"{name} is a pandas Series whose index is not X's"):
        UpliftModel(learner="t").fit(
            X, inputs["treatment"], inputs["y"], propensity=inputs["propensity"]
        )


def test_series_sharing_xs_index_give_the_arrays_answer(cohort, fitted):
    X, t, y, _, _ = cohort
    labelled = X.set_axis([f"p{i}" for i in range(len(X))])
    model = UpliftModel(learner="t").fit(
        labelled, pd.Series(t, index=labelled.index), pd.Series(y, index=labelled.index)
    )
    effect = model.predict_effect(labelled.head(5))
    assert effect.index.tolist() == ["p0", "p1", "p2", "p3", "p4"]
    np.testing.assert_array_equal(effect.to_numpy(), fitted.predict_effect(X.head(5)).to_numpy())


@pytest.mark.parametrize(
    "name, shape", [("y", (300, 2)), ("treatment", (300, 2)), ("propensity", (300, 3))]
)
def test_a_table_where_one_value_per_row_is_needed_is_refused(cohort, name, shape):
    X, t, y, p, _ = cohort
    inputs = {"treatment": t, "y": y, "propensity": p}
    inputs[name] = np.repeat(np.asarray(inputs[name]).reshape(-1, 1), shape[1], axis=1)
    with pytest.raises(
        InputError, match=rf"{name} must hold one value per row.*\(300, {shape[1]}\)"
    ):
        UpliftModel(learner="t").fit(
            X, inputs["treatment"], inputs["y"], propensity=inputs["propensity"]
        )


def test_propensity_that_is_not_a_number_is_located(cohort):
    X, t, y, p, _ = cohort
    text = p.astype(str).astype(object)
    text[4] = "high"
    with pytest.raises(InputError, match=r"first rows 4 with values 'high'"):
        UpliftModel(learner="t").fit(X, t, y, propensity=text)


def test_rows_are_given_by_position_when_xs_index_repeats_labels(cohort):
    X, t, y, _, _ = cohort
    y = y.copy()
    y[5] = np.nan
    repeated = X.set_axis(np.repeat(np.arange(150), 2))
    with pytest.raises(InputError, match=r"first: positions 5 \(X's index repeats labels\)"):
        UpliftModel(learner="t").fit(repeated, t, y)


def test_the_arm_minimum_says_it_is_never_below_twice_n_folds(cohort):
    X, t, y, _, _ = cohort
    t = t.copy()
    t[np.flatnonzero(t == "b")[4:]] = "a"
    with pytest.raises(InputError, match=r"'b' has 4 rows.*at least 6 rows.*twice n_folds"):
        UpliftModel(learner="t", min_arm_rows=1).fit(X, t, y)


# ---------------------------------------------------------------- feature columns
@pytest.mark.parametrize(
    "column, says",
    [
        (pd.date_range("2020-01-01", periods=300), "holds dates"),
        (pd.to_timedelta(np.arange(300), unit="D"), "holds durations"),
        (np.arange(300) + 1j, "holds complex numbers"),
        (
            pd.Series([[1]] * 300),
            r"holds values that are neither numbers nor text \(first: \[1\]\)",
        ),
    ],
    ids=["dates", "durations", "complex", "lists"],
)
def test_feature_columns_no_learner_can_read_are_refused_by_name(cohort, column, says):
    X, t, y, _, _ = cohort
    with pytest.raises(InputError, match=rf"X column 'extra' {says}"):
        UpliftModel(learner="t").fit(X.assign(extra=column), t, y)


def test_a_feature_named_like_the_contributions_baseline_is_refused(cohort):
    X, t, y, _, _ = cohort
    with pytest.raises(InputError, match="column named 'base'"):
        UpliftModel(learner="t").fit(X.assign(base=np.arange(300.0)), t, y)


@pytest.mark.parametrize("rows", [5, 300], ids=["single-row path", "frame path"])
def test_a_value_of_the_other_kind_than_the_fitted_categories_is_refused(cohort, rows):
    X, t, y, _, _ = cohort
    as_text = X.assign(ee=X["ee"].astype(int).astype(str))
    model = UpliftModel(learner="t").fit(as_text, t, y)
    # the numbers the column held would all be unknown texts, so all silently missing
    with pytest.raises(
        InputError, match=r"X column 'ee' held text categories.*got 0\.0 \(number\)"
    ):
        model.predict_effect(X.head(rows))
    coded = X.assign(site=pd.Categorical(np.arange(300) % 3))
    model = UpliftModel(learner="t").fit(coded, t, y)
    with pytest.raises(InputError, match=r"'site' held number categories.*got '0' \(text\)"):
        model.predict_effect(coded.assign(site=(np.arange(300) % 3).astype(str)).head(rows))


@pytest.mark.parametrize("rows", [5, 300], ids=["single-row path", "frame path"])
def test_text_columns_of_any_dtype_give_the_same_effects(cohort, fitted, rows):
    X = cohort[0].head(rows)
    want = fitted.predict_effect(X)
    for dtype in (object, "string", "string[pyarrow]"):
        kinds = X.assign(role=X["role"].astype(dtype), gender=X["gender"].astype(dtype))
        pd.testing.assert_frame_equal(fitted.predict_effect(kinds[kinds.columns[::-1]]), want)


def test_an_unseen_category_is_missing_on_both_paths_without_a_pandas_deprecation(cohort, fitted):
    X = cohort[0].assign(role=cohort[0]["role"].astype(object))
    X.loc[0, "role"] = "chaplain"
    with warnings.catch_warnings():
        # pandas 3 deprecates (and pandas 4 refuses) categoricals built from foreign values
        warnings.simplefilter("error")
        frame_path = fitted.predict_effect(X)
        single_row = fitted.predict_effect(X.head(1))
    assert np.isfinite(frame_path.to_numpy()).all()
    pd.testing.assert_frame_equal(frame_path.head(1), single_row)


def test_duplicated_columns_at_predict_are_named(cohort, fitted):
    X = cohort[0].head(3)
    with pytest.raises(InputError, match=r"duplicated column names \['ee'\]"):
        fitted.predict_effect(pd.concat([X, X[["ee"]]], axis=1))


# ---------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    "params, says",
    [
        ({"n_folds": 1}, r"n_folds=1 \(accepted: an integer >= 2\)"),
        ({"clip": (0.5, 0.1)}, r"clip=\(0.5, 0.1\) \(accepted: \(low, high\)"),
        ({"random_state": None}, r"random_state=None"),
        ({"random_state": -1}, r"random_state=-1 \(accepted: an integer from 0"),
        ({"design": "rct"}, r"design='rct'"),
    ],
)
def test_doubly_robust_scores_refuses_parameters_before_any_work(cohort, params, says):
    X, t, y, _, _ = cohort
    with pytest.raises(InputError, match="invalid doubly_robust_scores parameters: " + says):
        doubly_robust_scores(X, t, y, **params)


@pytest.mark.parametrize("seed", [-1, 2**40])
def test_a_seed_numpy_cannot_take_is_refused_as_a_parameter(seed):
    with pytest.raises(InputError, match=rf"random_state={seed} \(accepted: an integer from 0"):
        UpliftModel(random_state=seed).check_parameters()


@pytest.mark.parametrize(
    "params, says",
    [
        (
            {"final_candidates": ("gbm",)},
            r"final_candidates\[0\]='gbm' \(accepted: GBMSpec \| RidgeSpec\)",
        ),
        ({"outcome_candidates": GBMSpec()}, r"outcome_candidates=GBMSpec\(.*\(accepted: None for"),
        (
            {"outcome_candidates": [GBMSpec(num_leaves=1)]},
            r"outcome_candidates\[0\]\.num_leaves=1 \(accepted: an integer >= 2\)",
        ),
        ({"final_candidates": [RidgeSpec(alpha=-1.0)]}, r"final_candidates\[0\]\.alpha=-1\.0"),
        (
            {"outcome_candidates": [GBMSpec(learning_rate=float("nan"))]},
            r"outcome_candidates\[0\]\.learning_rate=nan",
        ),
    ],
)
def test_candidates_no_stage_can_fit_are_refused_before_any_work(params, says):
    # LightGBM stopped mid-fit on num_leaves=1; a negative ridge alpha fitted without a word
    with pytest.raises(InputError, match="invalid UpliftModel parameters: " + says):
        UpliftModel(**params).check_parameters()


# ---------------------------------------------------------------- outputs
def test_zero_rows_give_empty_answers_of_the_documented_shape(cohort, fitted):
    empty = cohort[0].head(0)
    assert fitted.predict_effect(empty).columns.tolist() == ["a", "b"]
    lower, upper = fitted.predict_interval(empty)
    assert lower.shape == upper.shape == (0, 2)
    parts = fitted.contributions(empty, "b", versus="a")
    assert parts.columns.tolist() == [*fitted.feature_names_, "base"] and len(parts) == 0


def test_mixed_ensembles_on_log_linear_outcomes_decompose_and_cover_their_effect():
    X, t, y, _, _ = make_uplift_cohort(600, arms=("none", "a", "b", "c"), seed=5)
    model = UpliftModel(
        heterogeneity_z=None,
        ensemble_size=2,
        outcome_candidates=(LogLinearSpec(alpha=1e-3), GBMSpec(num_leaves=4)),
    ).fit(X, t, y + 20.0)  # all outcomes positive: the log-linear candidate competes
    assert any("+" in used for used in model.arm_learners_.values())
    effect = model.predict_effect(X)
    lower, upper = model.predict_interval(X)
    assert ((lower <= effect) & (effect <= upper)).all().all()
    for arm, versus in [("a", None), ("c", "b")]:
        difference = effect[arm] - (0.0 if versus is None else effect[versus])
        total = model.contributions(X, arm, versus=versus).sum(axis=1)
        np.testing.assert_allclose(total, difference, rtol=0, atol=1e-9)


def test_compile_effects_builds_the_contribution_tables_it_is_asked_for(cohort, fitted):
    X, t, y, _, _ = cohort
    other = UpliftModel(learner="x").fit(X, t, -y)
    learners = {"first": fitted, "second": other}
    assert compile_effects(learners).explained == ("first",)
    asked = compile_effects(learners, explained=["second"])
    assert asked.explained == ("second",)
    none = compile_effects(learners, explained=[])
    assert len(pickle.dumps(none)) < len(pickle.dumps(asked))
    # built when first asked instead, and the same numbers
    M = none.encode(X.head(20))
    np.testing.assert_allclose(
        none.contrib(M, "second", 1), asked.contrib(M, "second", 1), rtol=0, atol=1e-12
    )


SCRIPT = """
import hashlib, warnings
import numpy as np
from recommender.uplift import UpliftModel
from recommender.uplift._synthetic import make_uplift_cohort
warnings.simplefilter("ignore")
X, t, y, _, _ = make_uplift_cohort(300, arms=("none", "a", 2), seed=1)
X = X.assign(role=X["role"].astype(object), tag=np.where(np.arange(300) % 3, "x", "y"))
model = UpliftModel().fit(X, t, y)
lower, upper = model.predict_interval(X)
parts = [model.predict_effect(X), lower, upper, model.contributions(X, 2)]
print(hashlib.sha256(b"".join(p.to_numpy().tobytes() for p in parts)).hexdigest())
"""


def test_a_fixed_seed_gives_the_same_model_in_processes_with_other_hash_seeds():
    def run(hash_seed: str) -> str:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    first, second = run("1"), run("2")
    assert len(first) == 64 and first == second
