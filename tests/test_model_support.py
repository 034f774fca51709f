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
    # the threshold is the one recorded: 4 rows are enough when 4 are asked (and then the
    # app's other fields are checked against those 4 apps' own ranges)
    enough = support_check(supported(fake_model(), rows, min_rows=4)).outside(
        model.feature_frame(asked)
    )[4]
    assert "role" not in [item["field"] for item in enough]
    assert all(" with role app " in item["seen"] for item in enough)


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


def role_shaped_rows(n=600, seed=3):
    """Training profiles shaped by role as real ones are: residents young with 0 years in
    practice, nurses working at most 60 hours, nobody in oncology but physicians."""
    rows = profiles(n, seed=seed)
    resident = rows["role"] == "resident"
    rows.loc[resident, "age"] = np.clip(rows.loc[resident, "age"], 25, 36)
    rows.loc[resident, "years_in_practice"] = 0.0
    nurse = rows["role"] == "nurse"
    rows.loc[nurse, "weekly_hours"] = np.clip(rows.loc[nurse, "weekly_hours"], 30, 60)
    rows.loc[(rows["role"] != "physician") & (rows["specialty"] == "oncology"), "specialty"] = (
        "other"
    )
    return rows


def test_the_support_is_also_recorded_within_each_role():
    rows = role_shaped_rows()
    within = training_support(feature_frame(rows), min_rows=11)["within"]
    assert within["feature"] == "role"
    assert sorted(within["levels"]) == sorted(rows["role"].unique())
    for role, group in rows.groupby("role"):
        entries = within["levels"][role]
        assert "role" not in entries
        for name in ("age", "years_in_practice", "weekly_hours", "ee", "dp", "pa"):
            assert entries[name] == {"min": group[name].min(), "max": group[name].max()}
        assert entries["specialty"]["rows"]["oncology"] == int(
            (group["specialty"] == "oncology").sum()
        )
    # a role too few rows had is not recorded within (the role itself is said to be unseen)
    few = training_support(feature_frame(training_rows()), min_rows=11)["within"]["levels"]
    assert "app" not in few and "nurse" in few
    assert "within" not in training_support(feature_frame(rows), within=None)


def test_a_profile_inside_every_field_but_outside_its_role_is_named():
    rows = role_shaped_rows()
    model = supported(fake_model(), rows)
    typical = {"age": 30, "years_in_practice": 0.0, "weekly_hours": 50.0, "ee": 20, "dp": 5}
    asked = pd.DataFrame(
        [
            {**typical, "role": "resident", "specialty": "surgery"},  # inside
            {**typical, "role": "resident", "age": 50, "years_in_practice": 12.0},
            {**typical, "role": "physician", "age": 50, "years_in_practice": 12.0},  # inside
            {**typical, "role": "nurse", "weekly_hours": 75.0},
            {**typical, "role": "nurse", "specialty": "oncology"},
            # older than everyone: said once, by the field's own range
            {**typical, "role": "resident", "age": int(rows["age"].max()) + 1},
        ]
    ).reindex(columns=rows.columns)
    asked = asked.fillna(profiles(len(asked), seed=9).assign(specialty="surgery", pa=30))
    residents = rows[rows["role"] == "resident"]
    check = support_check(model)
    outside = check.outside(model.feature_frame(asked))
    assert outside[0] == [] and outside[2] == []
    assert outside[1] == [
        {
            "field": "age",
            "value": 50,
            "seen": f"the training rows with role resident range from "
            f"{residents['age'].min()} to {residents['age'].max()}",
        },
        {
            "field": "years_in_practice",
            "value": 12.0,
            "seen": "the training rows with role resident range from 0 to 0",
        },
    ]
    assert [(item["field"], item["value"]) for item in outside[3]] == [("weekly_hours", 75.0)]
    assert outside[3][0]["seen"].startswith("the training rows with role nurse range from")
    assert outside[4] == [
        {
            "field": "specialty",
            "value": "oncology",
            "seen": "0 training rows with role nurse (fewer than 11)",
        }
    ]
    assert [item["seen"] for item in outside[5]] == [
        f"the training rows range from {rows['age'].min()} to {rows['age'].max()}"
    ]
    # the service's single row, a batch's matrix and a frame name the same fields
    encoded = model.encode(asked)
    assert check.outside(encoded) == outside
    assert [check.outside(encoded[k : k + 1])[0] for k in range(len(asked))] == outside
    many = pd.concat([asked] * 4, ignore_index=True)  # past the value-by-value path
    assert check.outside(model.encode(many)) == outside * 4


def test_a_support_recorded_before_the_roles_checks_each_field_alone():
    rows = role_shaped_rows()
    model = supported(fake_model(), rows)
    del model.metadata["training_support"]["within"]
    asked = profiles(1, seed=9).assign(role="resident", age=50, years_in_practice=12.0)
    assert support_check(model).outside(model.feature_frame(asked)) == [[]]
