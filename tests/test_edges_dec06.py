"""Edges found on 6 December: a JSON string holding a lone surrogate escape (``"\\ud800"``),
refused by pydantic's parser without the field, and a per-feature LightGBM parameter of the
wrong length, refused by LightGBM's own ``[LightGBM] [Fatal]`` line during the fit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipelines.train import run_training
from recommender.errors import InputError
from recommender.uplift import GBMSpec, UpliftModel
from service_fixtures import (  # noqa: F401
    asgi_client,
    auth,
    linear_model,
    outcome,
    profile,
    recommender_home,
    service_home,
)

# -- 1. a lone surrogate escape in a request body ----------------------------------------

ID_ESCAPE = '"\\ud800"'  # JSON text: the escape itself, as a client sends it


def _with_lone_id(row: dict) -> str:
    return json.dumps({**row, "person_id": "P"}).replace('"P"', ID_ESCAPE)


def _bodies() -> dict[str, tuple[str, str]]:
    flagged = _with_lone_id(profile(crisis_risk=True))
    return {
        "/recommend": (flagged, "person_id"),
        "/recommend_batch": (
            f'{{"profiles": [{json.dumps(profile())}, {flagged}]}}',
            "profiles[1].person_id",
        ),
        "/allocate": (f'{{"profiles": [{flagged}], "budget": 5000}}', "profiles[0].person_id"),
        "/outcomes": (f'{{"outcomes": [{_with_lone_id(outcome("x"))}]}}', "outcomes[0].person_id"),
    }


@pytest.mark.parametrize("route", ["/recommend", "/recommend_batch", "/allocate", "/outcomes"])
def test_a_lone_surrogate_is_refused_naming_its_field_and_byte(asgi_client, route):
    # Found: 400 "Invalid JSON: unexpected end of hex escape at line 1 column 22", no field.
    text, field = _bodies()[route]
    body = text.encode()
    response = asgi_client.post(
        route, content=body, headers={**auth("program"), "content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    answer = response.json()
    problem = answer["problems"][0]
    assert problem["field"] == field
    assert problem["value"] == "(hidden)"  # a person id is never echoed
    at = body.index(b"\\ud800")
    assert problem["message"] == (
        "Invalid JSON: character 1 is U+D800, a lone surrogate, which is not text "
        f"(the escape at byte {at:,} of the body)"
    )
    assert problem["accepted"].startswith("a string of 1 to 64 characters")
    assert (
        "a \\uD800-\\uDBFF escape only directly followed by a \\uDC00-\\uDFFF one"
        in (problem["accepted"])
    )
    assert answer["error"].startswith(f"{field}: Invalid JSON: character 1 is U+D800")
    if route != "/outcomes":  # the crisis flag beside it is still answered
        [crisis] = answer["crisis_results"]
        assert crisis["answer"]["safety"]["level"] == "crisis"
        assert crisis["answer"]["ranking"] == []


def test_every_lone_surrogate_is_named_with_its_own_byte(asgi_client):
    body = b'{"profiles": [{"gender": "f\\udc00\\ud800"}, {"\\udfff": 1}], "budget": 5}'
    response = asgi_client.post(
        "/allocate", content=body, headers={**auth("program"), "content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    problems = response.json()["problems"]
    low, key = body.index(b"\\udc00"), body.index(b"\\udfff")
    assert [p["field"] for p in problems] == ["profiles[0].gender", "profiles[1]"]
    assert problems[0]["message"].endswith(f"(the escape at byte {low} of the body)")
    assert problems[0]["accepted"].startswith("one of female, male, nonbinary, undisclosed; ")
    assert problems[1]["message"] == (
        "Invalid JSON: a key of this object: its character 1 is U+DFFF, a lone surrogate, "
        f"which is not text (the escape at byte {key} of the body)"
    )


@pytest.mark.parametrize(
    "person_id",
    [
        '"p\\ud83d\\ude00"',  # a pair: one character beyond U+FFFF
        '"p\\\\ud800"',  # an escaped backslash: the text \ud800, no escape
    ],
)
def test_paired_escapes_and_escaped_backslashes_are_not_lone_surrogates(asgi_client, person_id):
    body = json.dumps(profile(person_id="P")).replace('"P"', person_id).encode()
    response = asgi_client.post(
        "/recommend", content=body, headers={**auth("program"), "content-type": "application/json"}
    )
    assert response.status_code == 200, response.text


# -- 2. a per-feature LightGBM parameter of the wrong length ----------------------------


def _fit(extra, columns=("x", "z")):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({c: rng.normal(size=120) for c in columns})
    model = UpliftModel(learner="t", n_folds=2, outcome_candidates=[GBMSpec(extra=extra)])
    return model.fit(X, np.repeat(["none", "a"], 60), rng.normal(size=120))


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (
            {"monotone_constraints": [1, -1, 0]},
            "outcome_candidates[0].extra.monotone_constraints=(1, -1, 0) (3 values; X has 2 "
            "features (x, z); accepted: 2 values, one per feature in X's column order)",
        ),
        (  # an alias, and a list shorter than X
            {"feature_contrib": [1.0]},
            "feature_contrib=(1.0,) (1 value; X has 2 features (x, z); accepted: 2 values",
        ),
        ({"max_bin_by_feature": [9, 9, 9]}, "max_bin_by_feature=(9, 9, 9) (3 values; X has 2"),
        # LightGBM takes an index past the last feature without a word
        (
            {"interaction_constraints": ((0, 5),)},
            "interaction_constraints=((0, 5),) (names column index 5; X has 2 features (x, z); "
            "accepted: groups of column indices from 0 to 1)",
        ),
    ],
)
def test_a_per_feature_list_that_does_not_fit_x_is_refused_before_any_fit(extra, said, capfd):
    # Found: the fit printed "[LightGBM] [Fatal] Check failed: ... monotone_constraints.size()"
    # on stderr and raised LightGBM's own words, naming neither the count nor X's features.
    with pytest.raises(InputError) as caught:
        _fit(extra)
    assert str(caught.value).startswith("invalid UpliftModel parameters: ")
    assert said in str(caught.value)
    assert "[LightGBM]" not in capfd.readouterr().err


def test_a_per_feature_list_that_fits_x_is_fitted():
    model = _fit({"monotone_constraints": [1, 0, -1]}, columns=("x", "z", "w"))
    assert model.n_features_in_ == 3


def test_a_one_value_list_is_checked_on_one_column_by_the_config_check():
    # Found: the config check built its trial booster on 2 columns at least, so a list of one
    # value (right for a one-feature X) was refused with LightGBM's own "Check failed" words.
    assert GBMSpec(extra={"monotone_constraints": [1]}).extra_problems() == []
    _fit({"monotone_constraints": [1]}, columns=("x",))


def test_a_training_run_refuses_it_with_our_words_alone(tmp_path, capfd):
    overrides = {
        "data": {"n": 2000},
        "learner": {
            "learner": "t",
            "n_folds": 2,
            "params": {"outcome_candidates": [{"gbm": {"extra": {"feature_contri": [1.0] * 99}}}]},
        },
    }
    with recommender_home(tmp_path / "home"), pytest.raises(InputError) as caught:
        run_training(overrides=overrides)
    assert "feature_contri=(" in str(caught.value) and "99 values; X has " in str(caught.value)
    assert "[LightGBM]" not in capfd.readouterr().err


def test_interaction_constraints_as_yaml_writes_them_fit_and_keep_their_groups():
    """``interaction_constraints`` is a list of lists (as YAML and JSON write it): the spec is
    still hashable (specs are dict keys), and the fitted model, whose boosters are merged
    through LightGBM's model text, loads and predicts; a tuple of tuples reaches LightGBM as a
    list of lists, the only nested form its model text can hold."""
    spec = GBMSpec(extra={"interaction_constraints": [[0, 1], [2]]})
    assert hash(spec) == hash(GBMSpec(extra={"interaction_constraints": ((0, 1), (2,))}))
    assert spec.params(seed=0, n_jobs=1)["interaction_constraints"] == [[0, 1], [2]]
    rng = np.random.default_rng(3)
    n = 1_500
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    t = rng.choice(["none", "x"], size=n)
    y = X["a"] + (t == "x") * X["b"] + rng.normal(size=n)
    model = UpliftModel(learner="t", outcome_candidates=[spec], ensemble_size=1).fit(X, t, y)
    effect = model.predict_effect(X.head(50))
    assert np.all(np.isfinite(np.asarray(effect, dtype=float)))
