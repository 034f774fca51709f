"""RecommendationModel: the scored table, the recommendation rule, and refusing bad rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_model_fakes import ARMS, fake_model, profiles

from recommender.errors import InputError
from recommender.model import RecommendationModel, feature_schema, frame_from_schema


def test_score_has_the_contract_columns_in_order():
    model = fake_model()
    scored = model.score(profiles(30), contributions=True)
    expected = ["person_id", "recommended", "ranking_meaningful", "benefit_established"]
    for arm in ARMS:
        expected += [f"effect_{arm}", f"lower_{arm}", f"upper_{arm}"]
    # every secondary outcome's effect with its interval, as the primary's
    expected += [
        f"{kind}_{o}_{arm}"
        for o in ("dp", "pa")
        for arm in ARMS
        for kind in ("effect", "lower", "upper")
    ]
    expected += ["outside_training_data"]
    expected += [f"contrib_{f}" for f in model.feature_names] + ["contrib_base"]
    assert list(scored.columns) == expected
    assert scored["person_id"].tolist() == profiles(30)["person_id"].tolist()


def test_recommends_lowest_effect_and_usual_care_when_nothing_helps():
    # coaching: -2 + 1.0 z; mindfulness: -1 - 1.5 z; peer_group: +0.5 (z = (ee - 27) / 10)
    model = fake_model()
    rows = profiles(3).assign(ee=[7, 47, 27])
    scored = model.score(rows)
    assert scored["recommended"].tolist() == ["coaching", "mindfulness", "coaching"]
    nothing_helps = fake_model(intercepts={a: 1.0 for a in ARMS}, slopes={a: 0.0 for a in ARMS})
    assert set(nothing_helps.score(profiles(20))["recommended"]) == {"none"}


def test_offered_restricts_the_choice_but_usual_care_stays_possible():
    model = fake_model()
    rows = profiles(50)
    scored = model.score(rows, offered=["peer_group"])
    # peer_group's effect is +0.5 for everyone: usual care beats it.
    assert set(scored["recommended"]) == {"none"}
    with pytest.raises(InputError, match="yoga"):
        model.score(rows, offered=["yoga"])


def test_contributions_sum_to_the_recommended_effect():
    model = fake_model()
    scored = model.score(profiles(60), contributions=True)
    parts = scored.filter(like="contrib_").sum(axis=1).to_numpy()
    effect = np.array(
        [
            0.0 if arm == "none" else scored.loc[i, f"effect_{arm}"]
            for i, arm in scored["recommended"].items()
        ]
    )
    np.testing.assert_allclose(parts, effect, atol=1e-9)


def test_unknown_category_is_refused_with_row_column_and_value():
    model = fake_model()
    rows = profiles(5)
    rows.loc[3, "role"] = "surgeon"
    with pytest.raises(InputError) as caught:
        model.score(rows)
    problem = caught.value.problems[0]
    assert (problem["row"], problem["column"], problem["value"]) == (3, "role", "surgeon")
    assert "physician" in problem["rule"]


def test_missing_feature_column_is_named():
    with pytest.raises(InputError, match="weekly_hours"):
        fake_model().score(profiles(5).drop(columns="weekly_hours"))


def test_categorical_input_with_other_category_order_gets_the_fitted_codes():
    model = fake_model()
    rows = profiles(40)
    shuffled = rows.copy()
    shuffled["role"] = pd.Categorical(
        rows["role"], categories=["app", "nurse", "resident", "physician"]
    )
    X_plain, X_shuffled = model.feature_frame(rows), model.feature_frame(shuffled)
    assert (X_plain["role"].cat.codes == X_shuffled["role"].cat.codes).all()


def test_schema_round_trip_keeps_types():
    X = frame_from_schema(profiles(10), fake_model().features)
    schema = feature_schema(X)
    assert schema == fake_model().features
    assert X["ee"].dtype == np.int64 and X["weekly_hours"].dtype == np.float64


def test_outcome_models_must_share_arms():
    from test_model_fakes import LinearUplift, features

    X = features(profiles())
    ee = LinearUplift().fit(X, None, None)
    dp = LinearUplift(intercepts={"coaching": 0.0}, slopes={"coaching": 0.0}).fit(X, None, None)
    with pytest.raises(InputError, match="share the arms"):
        RecommendationModel(outcome_models={"ee": ee, "dp": dp}, features=X, catalog_version="1")


def test_score_never_recommends_an_arm_the_catalog_does_not_offer_the_person():
    from recommender.catalog import load_catalog

    catalog = load_catalog()
    # coaching is the best arm for low-EE rows, but the catalog does not offer it to nurses.
    assert "nurse" not in catalog.arm("coaching").eligibility.roles
    base = fake_model()
    model = RecommendationModel(
        outcome_models=base.outcome_models,
        features=base.features,
        catalog_version="test-1",
        catalog=catalog,
    )
    rows = profiles(200).assign(role="nurse", ee=27)  # coaching -2, mindfulness -1
    assert set(base.score(rows)["recommended"]) == {"coaching"}
    scored = model.score(rows)
    assert "coaching" not in set(scored["recommended"])
    assert set(scored["recommended"]) == {"mindfulness"}
    physicians = rows.assign(role="physician")
    assert set(model.score(physicians)["recommended"]) == {"coaching"}


def test_eligibility_needs_its_profile_columns():
    from recommender.catalog import load_catalog

    base = fake_model()
    model = RecommendationModel(
        outcome_models=base.outcome_models,
        features=base.features,
        catalog_version="test-1",
        catalog=load_catalog(),
    )
    with pytest.raises(InputError, match="specialty"):
        model.eligibility(profiles(5).drop(columns="specialty"))
