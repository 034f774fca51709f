"""The compiled prediction form answers exactly what the fitted learners answer.

Every learner kind (T, X, DR, auto; boosters, ridge and log-linear members), every outcome and
every arm: effects, intervals and contributions equal the learners' own to 1e-9, and the
contributions still sum to the effect. Rows encoded straight from request mappings give the
same matrix as the feature frame, and are refused for the same reasons.
"""

import importlib
import io
import pickle

import numpy as np
import pandas as pd
import pytest

from recommender.errors import InputError
from recommender.model import OUTSIDE_COLUMN, RecommendationModel
from recommender.uplift import GBMSpec, LogLinearSpec, RidgeSpec, UpliftModel, compile_effects
from recommender.uplift._synthetic import make_uplift_cohort

ARMS = ("none", "coaching", "mindfulness", "peer_group")
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def cohort():
    return make_uplift_cohort(1500, arms=ARMS, seed=5)


def _fit(kind, X, t, y, p):
    if kind == "ridge-dr":
        return UpliftModel(
            learner="dr", final_candidates=(RidgeSpec(alpha=3.0),), ensemble_size=1
        ).fit(X, t, y)
    if kind == "log-linear-t":
        # all-positive outcomes: the log-linear outcome model is a candidate (a member
        # the compiled form asks on its own)
        return UpliftModel(
            learner="t", outcome_candidates=(LogLinearSpec(), GBMSpec()), ensemble_size=2
        ).fit(X, t, y + 60.0, propensity=p)
    return UpliftModel(learner=kind).fit(X, t, y, propensity=p)


@pytest.fixture(scope="module")
def secondary_dr(cohort):
    """The DR learner of the secondary outcome, fitted once: five of the six models below
    have it (each gets its own copy, as if fitted for it)."""
    X, t, y, p, _ = cohort
    return pickle.dumps(_fit("dr", X, t, -0.5 * y, p))


@pytest.fixture(scope="module", params=["t", "x", "dr", "auto", "ridge-dr", "log-linear-t"])
def model(request, cohort):
    X, t, y, p, _ = cohort
    if request.param == "dr":
        secondary = _fit("x", X, t, -0.5 * y, p)
    else:
        secondary = pickle.loads(request.getfixturevalue("secondary_dr"))
    outcomes = {"ee": _fit(request.param, X, t, y, p), "dp": secondary}
    return RecommendationModel(outcome_models=outcomes, features=X, catalog_version="t")


def _rows(X):
    return [
        {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in X.astype(object).to_dict(orient="records")
    ]


def test_compiled_effects_intervals_and_contributions_equal_the_learners(cohort, model):
    X = cohort[0].iloc[:400]
    assert model.compiled is not None
    prediction = model.predict(model.encode(X), alpha=0.1)
    learner = model.outcome_models["ee"]
    arms = list(model.treatment_arms)
    np.testing.assert_allclose(
        prediction.effect, learner.predict_effect(X)[arms], atol=TOLERANCE, rtol=0
    )
    lower, upper = learner.predict_interval(X, alpha=0.1)
    np.testing.assert_allclose(prediction.lower, lower[arms], atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(prediction.upper, upper[arms], atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(
        prediction.secondary["dp"],
        model.outcome_models["dp"].predict_effect(X)[arms],
        atol=TOLERANCE,
        rtol=0,
    )
    # the secondary outcome's interval is its learner's own, at the same level
    lower, upper = model.outcome_models["dp"].predict_interval(X, alpha=0.1)
    np.testing.assert_allclose(
        prediction.secondary_lower["dp"], lower[arms], atol=TOLERANCE, rtol=0
    )
    np.testing.assert_allclose(
        prediction.secondary_upper["dp"], upper[arms], atol=TOLERANCE, rtol=0
    )
    assert np.all(prediction.upper > prediction.lower)
    assert np.all(prediction.secondary_upper["dp"] > prediction.secondary_lower["dp"])

    positions = np.arange(0, 400, 3)
    parts = model.explain(model.encode(X), {arm: positions for arm in arms})
    for j, arm in enumerate(arms):
        expected = learner.contributions(X.iloc[positions], arm)
        np.testing.assert_allclose(parts[arm], expected, atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(
            parts[arm].sum(axis=1), prediction.effect[positions, j], atol=TOLERANCE, rtol=0
        )


def test_every_outcome_compiles_with_intervals(cohort, model):
    X = cohort[0].iloc[:200]
    compiled = compile_effects(model.outcome_models)
    M = compiled.encode(X)
    out = compiled.predict(M, alpha=0.2)
    for outcome, learner in model.outcome_models.items():
        lower, upper = learner.predict_interval(X, alpha=0.2)
        np.testing.assert_allclose(
            out[outcome]["effect"], learner.predict_effect(X), atol=TOLERANCE, rtol=0
        )
        np.testing.assert_allclose(out[outcome]["lower"], lower, atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(out[outcome]["upper"], upper, atol=TOLERANCE, rtol=0)


def test_score_is_unchanged_by_compilation(cohort, model):
    X = cohort[0].iloc[:150]
    fast = model.score(X, contributions=True)
    slow_model = RecommendationModel(
        outcome_models=model.outcome_models, features=X, catalog_version="t"
    )
    slow_model._compiled = None  # the learners answer one by one
    slow = slow_model.score(X, contributions=True)
    judged = ["recommended", "ranking_meaningful", "benefit_established"]
    assert fast[judged].equals(slow[judged])
    numbers = [c for c in fast.columns if c not in ("person_id", *judged, OUTSIDE_COLUMN)]
    np.testing.assert_allclose(fast[numbers], slow[numbers], atol=TOLERANCE, rtol=0)
    contrib = [c for c in fast.columns if c.startswith("contrib_")]
    best = fast["recommended"].to_numpy()
    effect = np.array(
        [fast.at[i, f"effect_{a}"] if a != "none" else 0.0 for i, a in zip(fast.index, best)]
    )
    np.testing.assert_allclose(fast[contrib].sum(axis=1), effect, atol=TOLERANCE, rtol=0)


def test_the_scored_table_gives_every_outcome_its_interval(cohort, model):
    X = cohort[0].iloc[:60]
    table = model.score(X, alpha=0.2)
    learner = model.outcome_models["dp"]
    lower, upper = learner.predict_interval(X, alpha=0.2)
    effect = learner.predict_effect(X)
    for arm in model.treatment_arms:
        columns = [f"effect_dp_{arm}", f"lower_dp_{arm}", f"upper_dp_{arm}"]
        # beside each other, after the primary's columns
        at = table.columns.get_loc(columns[0])
        assert list(table.columns[at : at + 3]) == columns
        for column, expected in zip(columns, (effect, lower, upper)):
            np.testing.assert_allclose(table[column], expected[arm], atol=TOLERANCE, rtol=0)


def test_a_model_compiled_with_the_primary_intervals_alone_compiles_again(cohort, model):
    # Models registered before every outcome had intervals carry a form (layout 2) whose
    # secondary outcomes have no fold models: it is compiled afresh, and then gives them.
    X = cohort[0].iloc[:30]
    older = pickle.loads(pickle.dumps(model))
    stale = compile_effects(
        {o: older.outcome_models[o] for o in older.outcomes}, intervals=[older.primary]
    )
    stale.form = 2
    older._compiled = stale
    older = pickle.loads(pickle.dumps(older))
    prediction = older.predict(older.encode(X), alpha=0.1)
    assert older.compiled is not stale and older.compiled.current
    lower, _ = model.outcome_models["dp"].predict_interval(X, alpha=0.1)
    np.testing.assert_allclose(
        prediction.secondary_lower["dp"],
        lower[list(model.treatment_arms)],
        atol=TOLERANCE,
        rtol=0,
    )


def test_request_rows_encode_like_the_feature_frame(cohort, model):
    X = cohort[0].iloc[:50]
    np.testing.assert_array_equal(model.encode(_rows(X)), model.encode(X))


@pytest.mark.parametrize(
    "column, value, rule",
    [
        ("role", "astronaut", "one of"),
        ("age", "old", "a number"),
        ("age", float("nan"), "a number"),
    ],
)
def test_request_rows_are_refused_with_row_and_column(cohort, model, column, value, rule):
    rows = _rows(cohort[0].iloc[:3])
    rows[2][column] = value
    with pytest.raises(InputError) as raised:
        model.encode(rows)
    problem = raised.value.problems[0]
    assert (problem["row"], problem["column"]) == (2, column)
    assert rule in problem["rule"]


def test_a_model_pickled_before_compilation_compiles_when_first_used(cohort, model):
    X = cohort[0].iloc[:20]
    state = pickle.loads(pickle.dumps(model))
    state.__dict__.pop("_compiled", None)
    older = pickle.loads(pickle.dumps(state))
    assert "_compiled" not in older.__dict__
    np.testing.assert_allclose(
        older.predict(older.encode(X)).effect,
        model.outcome_models["ee"].predict_effect(X),
        atol=TOLERANCE,
        rtol=0,
    )
    assert older.compiled is not None
    restored = pickle.loads(pickle.dumps(older))
    assert restored.__dict__.get("_compiled") is not None  # carried once built


def test_learners_on_other_encodings_are_not_compiled_together(cohort):
    # the encodings are what differs: 500 rows fit them as well as the cohort's 1,500
    X, t, y, p = (part[:500] for part in cohort[:4])
    first = UpliftModel(learner="dr", ensemble_size=1).fit(X, t, y, propensity=p)
    second = UpliftModel(learner="dr", ensemble_size=1).fit(
        X.drop(columns="unrelated"), t, y, propensity=p
    )
    with pytest.raises(ValueError):
        compile_effects({"ee": first, "dp": second})
    pd.testing.assert_index_equal(first.predict_effect(X).columns, pd.Index(list(ARMS[1:])))


def test_a_used_compiled_model_pickles_and_answers_the_same_after(cohort, model):
    # Once used, the compiled form holds LightGBM handles made per process; pickling leaves
    # them out and the restored model makes its own.
    X = cohort[0].iloc[:50]
    encoded = model.encode(X)
    before = model.predict(encoded)
    arms = list(model.treatment_arms)
    needs = {arm: list(range(len(X))) for arm in arms}
    explained = model.explain(encoded, needs)
    restored = pickle.loads(pickle.dumps(model))
    after = restored.predict(restored.encode(X))
    np.testing.assert_array_equal(after.effect, before.effect)
    np.testing.assert_array_equal(after.upper, before.upper)
    again = restored.explain(restored.encode(X), needs)
    for arm in arms:
        np.testing.assert_array_equal(again[arm], explained[arm])
        np.testing.assert_allclose(
            again[arm].sum(axis=1), after.effect[:, arms.index(arm)], atol=TOLERANCE, rtol=0
        )


def test_a_model_pickled_with_an_older_compiled_layout_compiles_again(cohort, model):
    # A registered model carries its compiled form; one pickled before the lookup-table
    # layout has no ``form`` (or another one) and is compiled afresh from its learners.
    X = cohort[0].iloc[:30]
    assert model.compiled is not None  # compiled here, whichever test ran first
    older = pickle.loads(pickle.dumps(model))
    stale = older.__dict__["_compiled"]
    del stale.__dict__["form"]
    older = pickle.loads(pickle.dumps(older))
    assert not older.__dict__["_compiled"].current
    compiled = older.compiled
    assert compiled is not stale and compiled.current
    np.testing.assert_allclose(
        older.predict(older.encode(X)).effect,
        model.outcome_models["ee"].predict_effect(X)[list(model.treatment_arms)],
        atol=TOLERANCE,
        rtol=0,
    )


@pytest.mark.parametrize(
    "column, value, rule",
    [
        ("age", True, "a number"),
        ("age", "41", "a number"),
        ("age", 10**400, "a number"),
        ("age", float("inf"), "a number"),
        ("age", None, "a number"),
        ("role", None, "one of"),
    ],
)
@pytest.mark.parametrize("size", [5, 40])  # value by value, and numpy's column path
def test_request_rows_of_other_types_are_refused_with_row_and_column(
    cohort, model, column, value, rule, size
):
    rows = _rows(cohort[0].iloc[:size])
    rows[size - 1][column] = value
    with pytest.raises(InputError) as raised:
        model.encode(rows)
    problem = raised.value.problems[0]
    assert (problem["row"], problem["column"]) == (size - 1, column)
    assert rule in problem["rule"]
    assert len(raised.value.problems) == 1


def test_the_lightgbm_forest_sums_to_what_the_tables_compute(cohort, model):
    """The benchmark's anchor serves LightGBM's own call over every tree: it must be the same
    forest the tables read, so the comparison is like for like."""
    compiled = model.compiled
    if compiled._forest is None:
        with pytest.raises(ValueError, match="no booster members"):
            compiled.lightgbm_forest()
        return
    M = compiled.encode(cohort[0].iloc[:300])
    booster, to_outputs = compiled.lightgbm_forest()
    lightgbm = booster.predict(M, raw_score=True).reshape(M.shape[0], -1) @ to_outputs
    tables = compiled._forest.predict(M, compiled.binning.bins(M))
    np.testing.assert_allclose(lightgbm, tables, rtol=0, atol=TOLERANCE)


# Where the compiled form's member classes lived before their modules were split off.
FORMER_MODULES = {
    "recommender.uplift._compiled_trees": "recommender.uplift._compiled",
    "recommender.uplift._compiled_linear": "recommender.uplift._compiled",
    "recommender.uplift._binning": "recommender.uplift._tree_tables",
}


def test_a_model_pickled_before_the_members_had_their_own_modules_finds_them(model):
    # A registered bundle carries its compiled form, whose classes it names by module: one
    # pickled before the split names the former modules, which must still hold the classes
    # (the same objects, so the form loads and answers as it did).
    assert model.compiled is not None
    named = set()

    class Recording(pickle.Unpickler):
        def find_class(self, module, name):
            named.add((module, name))
            return super().find_class(module, name)

    Recording(io.BytesIO(pickle.dumps(model))).load()
    moved = {(module, name) for module, name in named if module in FORMER_MODULES}
    assert moved
    for module, name in sorted(moved):
        former = importlib.import_module(FORMER_MODULES[module])
        assert getattr(former, name, None) is getattr(importlib.import_module(module), name)
