"""Where a profile lies outside the data a model learnt from: the support recorded at training,
the row-by-row check, and the scored table's column."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from test_model_fakes import fake_model, profiles

from recommender.catalog import load_catalog
from recommender.cohort import feature_frame
from recommender.model import (
    OUTSIDE_COLUMN,
    RecommendationModel,
    evidence_model,
    support_check,
    training_support,
)


def training_rows(n=400, seed=1):
    """Training profiles with only 4 advanced practice providers (role app)."""
    rows = profiles(n, seed=seed)
    rows["role"] = np.where(
        np.arange(n) < 4, "app", np.where(rows["role"] == "app", "nurse", rows["role"])
    )
    return rows


def supported(model, rows, min_rows=11):
    model.metadata = {
        **model.metadata,
        "training_support": training_support(feature_frame(rows), min_rows=min_rows),
    }
    return model


def test_the_support_is_the_training_rows_range_and_level_counts():
    rows = training_rows()
    support = training_support(feature_frame(rows), min_rows=11)
    assert support["rows"] == len(rows) and support["min_rows"] == 11
    features = support["features"]
    for name in ("age", "years_in_practice", "weekly_hours", "ee", "dp", "pa"):
        assert features[name] == {"min": rows[name].min(), "max": rows[name].max()}
    assert features["role"]["rows"] == {
        "physician": int((rows["role"] == "physician").sum()),
        "resident": int((rows["role"] == "resident").sum()),
        "nurse": int((rows["role"] == "nurse").sum()),
        "app": 4,
    }
    # every declared level, 0 for those no training row had
    assert features["specialty"]["rows"]["pediatrics"] == 0
    assert features["specialty"]["rows"]["surgery"] == int((rows["specialty"] == "surgery").sum())


def test_a_value_at_the_training_max_is_inside_and_just_above_is_outside():
    rows = training_rows()
    model = supported(fake_model(), rows)
    oldest, fewest = int(rows["age"].max()), float(rows["weekly_hours"].min())
    asked = profiles(5, seed=2).assign(role="nurse", specialty="surgery")
    asked["age"] = [oldest, oldest + 1, 40, 40, 40]
    asked["weekly_hours"] = [50.0, 50.0, fewest, fewest - 0.1, 50.0]
    asked.loc[4, "role"] = "app"
    outside = support_check(model).outside(model.feature_frame(asked))
    assert outside[0] == [] and outside[2] == []
    assert outside[1] == [
        {
            "field": "age",
            "value": oldest + 1,
            "seen": f"the training rows range from {rows['age'].min()} to {oldest}",
        }
    ]
    assert [item["field"] for item in outside[3]] == ["weekly_hours"]
    assert outside[3][0]["value"] == pytest.approx(fewest - 0.1)
    # a level too few training rows had is named, with how many had it
    assert outside[4] == [
        {"field": "role", "value": "app", "seen": "4 training rows (fewer than 11)"}
    ]
    # the threshold is the one recorded: 4 rows are enough when 4 are asked
    assert (
        support_check(supported(fake_model(), rows, min_rows=4)).outside(
            model.feature_frame(asked)
        )[4]
        == []
    )


def test_the_encoded_rows_and_the_feature_frame_give_the_same_fields():
    from recommender.uplift import UpliftModel

    rows = training_rows(600)
    X = feature_frame(rows)
    treatment = np.random.default_rng(0).choice(["none", "coaching"], len(rows))
    learner = UpliftModel(learner="t", control="none", n_folds=2, random_state=0)
    with warnings.catch_warnings():  # a small random cohort: poor overlap is expected
        warnings.simplefilter("ignore")
        learner.fit(X, treatment, rows["ee"].to_numpy(dtype=float))
    model = RecommendationModel(outcome_models={"ee": learner}, features=X, catalog_version="t")
    model = supported(model, rows)
    asked = profiles(30, seed=4).assign(age=np.arange(30) * 3 + 10)
    asked.loc[::7, "role"] = "app"
    encoded = model.encode(asked)
    assert isinstance(encoded, np.ndarray)  # the compiled path the service takes
    check = support_check(model)
    assert check.outside(encoded) == check.outside(model.feature_frame(asked))
    assert check.outside(encoded) == check.outside(model.encode(asked.to_dict("records")))
    assert any(check.outside(encoded)) and [] in check.outside(encoded)
    # a request's single row (checked value by value) as in a batch
    assert [check.outside(encoded[k : k + 1])[0] for k in range(30)] == check.outside(encoded)


def test_levels_are_matched_by_their_text_whatever_their_type():
    # an extra categorical feature whose levels are numbers (unit 1, 2, 3)
    X = pd.DataFrame({"unit": pd.Categorical([1] * 20 + [2] * 3, categories=[1, 2, 3])})
    model = fake_model()
    model.features = [{"name": "unit", "kind": "category", "categories": [1, 2, 3]}]
    model.metadata = {"training_support": training_support(X, min_rows=11)}
    asked = pd.DataFrame({"unit": pd.Categorical([1, 2, 3], categories=[1, 2, 3])})
    outside = support_check(model).outside(asked)
    assert outside[0] == []
    assert [item["seen"] for row in outside[1:] for item in row] == [
        "3 training rows (fewer than 11)",
        "0 training rows (fewer than 11)",
    ]


def test_a_model_that_records_no_support_gives_none():
    assert support_check(fake_model()) is None
    assert support_check(evidence_model(load_catalog())) is None
    assert support_check(object()) is None


def test_the_scored_table_lists_the_fields_outside_empty_when_inside_missing_when_unknown():
    rows = training_rows()
    asked = profiles(3, seed=2).assign(role="nurse", age=40)
    asked.loc[1, "age"] = int(rows["age"].max()) + 1
    asked.loc[2, ["age", "role"]] = [int(rows["age"].max()) + 1, "app"]
    scored = supported(fake_model(), rows).score(asked)
    assert scored[OUTSIDE_COLUMN].tolist() == ["", "age", "age;role"]
    unknown = fake_model().score(asked)[OUTSIDE_COLUMN]
    assert unknown.isna().all() and unknown.dtype == pd.StringDtype()
