"""`exclude_features` in train.yaml: the learners neither use nor need a feature left out (gender
here); the data contract still asks for it, and every served path ignores it. Unknown names are
refused, naming them and listing the accepted ones.

One real small training run (T-learner, 2 folds, n = 3,000) in its own store.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from service_fixtures import (  # noqa: F401  (fixtures)
    PROFILE,
    asgi_client,
    auth,
    profile,
    recommender_home,
    service_home,
)
from test_model_fakes import profiles

import pipelines.train as train
from recommender import registry
from recommender.errors import InputError

SMALL = {
    "seed": 2,
    "data": {"n": 3000, "seed": 4},
    "learner": {"learner": "t", "n_folds": 2},
    "evaluation": {"n_folds": 2},
    "exclude_features": ["gender"],
}


# ------------------------------------------------------------------------------ the config
@pytest.mark.parametrize(
    "excluded, message",
    [
        (
            ["gendre"],
            "exclude_features: unknown feature(s) 'gendre' (accepted: age, gender, role, "
            "specialty, setting, years_in_practice, weekly_hours, ee, dp, pa)",
        ),
        (["gender", "person_id"], "unknown feature(s) 'person_id'"),
        ("gender", "exclude_features = 'gender' (accepted: a list of feature names from age,"),
        ([["gender"]], "exclude_features = [['gender']]"),
        (
            [
                "age",
                "gender",
                "role",
                "specialty",
                "setting",
                "years_in_practice",
                "weekly_hours",
                "ee",
                "dp",
                "pa",
            ],
            "exclude_features leaves no feature to learn from",
        ),
    ],
)
def test_a_bad_exclusion_is_refused_naming_it(excluded, message):
    with pytest.raises(InputError) as caught:
        train.config_from_mapping({"exclude_features": excluded})
    assert message in str(caught.value)


def test_a_named_extra_feature_may_be_excluded_and_the_default_excludes_nothing():
    config = train.config_from_mapping(
        {"extra_features": ["night_shifts"], "exclude_features": ["night_shifts", "age"]}
    )
    assert config["exclude_features"] == ["night_shifts", "age"]
    assert train.config_from_mapping({})["exclude_features"] == []


def test_the_shipped_config_says_what_it_leaves_out():
    assert train.load_config()["exclude_features"] == []


# ------------------------------------------------------------------------------ a trained model
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    home = tmp_path_factory.mktemp("no-gender-home")
    with recommender_home(home):
        result = train.run_training(overrides=SMALL, reason="trained without gender")
    return result, home


def other_gender(rows):
    swapped = rows.copy()
    swapped["gender"] = np.where(rows["gender"] == "female", "male", "female")
    return swapped


def test_the_learners_never_see_gender_and_the_model_ignores_it(trained):
    result, _ = trained
    model = result.model
    assert "gender" not in model.feature_names
    for learner in model.outcome_models.values():
        assert "gender" not in learner.encoder_.feature_names
    rows = profiles(200, seed=3)
    scored = model.score(rows, contributions=True)
    assert "contrib_gender" not in scored.columns
    assert scored.equals(model.score(other_gender(rows), contributions=True))
    # The model itself does not need the column.
    assert scored.equals(model.score(rows.drop(columns="gender"), contributions=True))


def test_the_registered_model_asks_for_the_contract_profile_and_ignores_gender(trained):
    result, home = trained
    rows = profiles(60, seed=5)
    with recommender_home(home):
        pyfunc = registry.load_pyfunc(f"models:/burnout-recommender/{result.version}")
    inputs = pyfunc.metadata.get_input_schema().input_names()
    # The contract is kept: a caller sends one profile, whatever the version leaves out.
    assert "gender" in inputs and "role" in inputs
    first = pyfunc.predict(rows)
    assert first.equals(pyfunc.predict(other_gender(rows)))
    np.testing.assert_allclose(
        first["effect_coaching"], result.model.predict_effect(rows)["coaching"]
    )


def test_the_card_lists_the_features_and_says_gender_was_left_out(trained):
    result, home = trained
    facts = json.loads((home / "cards" / result.version / "card.json").read_text())
    fairness = facts["fairness"]
    assert fairness["excluded"] == ["gender"] and "gender" not in fairness["features"]
    assert {"gender", "role", "setting"} <= {g["attribute"] for g in fairness["groups"]}
    gender = next(a for a in fairness["reasons"]["attributes"] if a["attribute"] == "gender")
    assert gender["used"] is False
    markdown = (home / "cards" / result.version / "card.md").read_text()
    assert "Gender is not a feature of this model (left out in training)" in markdown
    assert json.loads(json.dumps(result.config))["exclude_features"] == ["gender"]


@pytest.fixture
def linear_model(trained):
    """The service's model for asgi_client: the version trained without gender."""
    return trained[0].model


def test_the_service_keeps_the_contract_and_ignores_gender(asgi_client):
    answers = []
    for gender in ("female", "male", "undisclosed"):
        response = asgi_client.post(
            "/recommend", json=profile(gender=gender), headers=auth("program")
        )
        assert response.status_code == 200, response.text
        body = response.json()
        answers.append((body["recommended"], [(a["arm"], a["ee_effect"]) for a in body["ranking"]]))
        reasons = body["explanation"]["versus_usual_care"]
        assert all(r["feature"] != "gender" for r in reasons)
    assert answers[0] == answers[1] == answers[2]
    # The data contract still asks for gender, and says so.
    missing = {k: v for k, v in PROFILE.items() if k != "gender"}
    response = asgi_client.post("/recommend", json=missing, headers=auth("program"))
    assert response.status_code == 422
    assert "gender" in response.json()["error"]
