"""Found on 6 December: the LightGBM parameter check read a private LightGBM name and let
LightGBM's own ``[LightGBM] [Fatal]`` line reach the user before our message; an interval level
so small that its quantile is infinite gave infinite bounds; and a ranking of usual care alone
said it was meaningful."""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest

from pipelines.train import config_from_mapping
from recommender.cli import main
from recommender.errors import InputError
from service_fixtures import _app, auth, profile, service_home  # noqa: F401

# -- 1. LightGBM's parameters, by public means, and its words on stderr --------------------


def _with_extra(extra) -> dict:
    return {"learner": {"params": {"outcome_candidates": [{"gbm": {"extra": extra}}]}}}


def test_lightgbm_lists_its_parameters_and_aliases_through_its_documented_c_api():
    from recommender.uplift._lightgbm_params import lightgbm_parameters

    known = lightgbm_parameters()
    assert known["num_leaves"][0] == "num_leaves" and "num_leaf" in known["num_leaves"]
    assert (
        "random_state" in known["seed"] and "early_stopping_rounds" in known["early_stopping_round"]
    )
    assert "bagging_fraction" in known and "no_such" not in known


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ({"objective": "nonsense"}, "Unknown objective type name: nonsense"),
        ({"bagging_fraction": 2.0}, "(bagging_fraction) <= (1.0)"),
        ({"objective": "quantile", "alpha": 1.5}, "refuses them together"),
    ],
)
def test_only_our_message_reaches_stderr_when_lightgbm_refuses_a_value(capfd, extra, said):
    with pytest.raises(InputError, match="LightGBM refuses") as caught:
        config_from_mapping(_with_extra(extra))
    assert said in str(caught.value)
    out, err = capfd.readouterr()
    assert "[LightGBM]" not in out + err and "Fatal" not in out + err


def test_the_cli_says_the_refusal_once_in_its_own_words(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = tmp_path / "train.yaml"
    config.write_text(
        "learner:\n  params:\n    outcome_candidates: [{gbm: {extra: {objective: nonsense}}}]\n"
    )
    assert main(["train", "--config", str(config)]) == 2
    out, err = capfd.readouterr()
    assert err.startswith("error: training config ") and err.count("\n") == 1, err
    assert "objective='nonsense' (LightGBM refuses it: Unknown objective type name" in err
    assert "[LightGBM]" not in out + err
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").iterdir())


def test_what_else_reaches_stderr_meanwhile_is_passed_on(capfd):
    from recommender.uplift._lightgbm_params import _stderr_held

    with _stderr_held() as dropped:
        os.write(2, b"[LightGBM] [Fatal] refused\nanother thread's words\n")
        dropped.append("[LightGBM] [Fatal] refused\n")
    assert capfd.readouterr().err == "another thread's words\n"


# -- 2. interval levels whose quantile is not finite ---------------------------------------

TOO_SMALL = [1e-20, 2**-53, 1e-13]  # 1 - alpha/2 rounds to 1 for the first two: z = inf


@pytest.fixture(scope="module")
def fitted():
    from recommender.uplift import UpliftModel

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=120)})
    t = np.repeat(["none", "a"], 60)
    return UpliftModel(learner="t", n_folds=2).fit(X, t, rng.normal(size=120)), X


@pytest.mark.parametrize("alpha", [*TOO_SMALL, 0, 1, "0.1", True])
def test_predict_interval_refuses_a_level_without_finite_bounds(fitted, alpha):
    model, X = fitted
    with pytest.raises(InputError) as caught:
        model.predict_interval(X.head(3), alpha=alpha)
    assert str(caught.value) == (
        f"alpha={alpha!r} is not accepted; accepted: a number strictly between 0 and 1, "
        "at least 1e-12 (0.1: 90% intervals)"
    )


def test_the_least_accepted_level_gives_finite_bounds(fitted):
    from recommender.levels import ALPHA_LEAST

    model, X = fitted
    lower, upper = model.predict_interval(X.head(3), alpha=ALPHA_LEAST)
    assert np.isfinite(lower.to_numpy()).all() and np.isfinite(upper.to_numpy()).all()
    assert (upper.to_numpy() > lower.to_numpy()).all()


def test_every_public_level_parameter_takes_the_same_levels(fitted):
    import argparse

    from recommender.cli._numbers import alpha as cli_alpha
    from recommender.evaluation import (
        calibration_slope,
        mean_estimate,
        off_policy_values,
        policy_value,
    )
    from recommender.model import evidence_model
    from recommender.policy import ExplorationRule
    from recommender.catalog import load_catalog

    model = evidence_model(load_catalog())
    evidence = model.outcome_models[model.primary]
    people = pd.DataFrame([profile()])
    frame = model.feature_frame(people)
    values = np.arange(10.0)
    arm = np.array(["a", "none"] * 10)
    calls = {
        "mean_estimate": lambda a: mean_estimate(values, alpha=a),
        "calibration_slope": lambda a: calibration_slope(values, values[::-1], alpha=a),
        "off_policy_values": lambda a: off_policy_values(
            arm, np.full(20, 0.5), np.arange(20.0), np.full(20, "a"), alpha=a
        ),
        "policy_value": lambda a: policy_value(
            pd.DataFrame({"none": values, "a": values}),
            np.array(["a"] * 10),
            alpha=a,
        ),
        "the evidence model's predict_interval": lambda a: evidence.predict_interval(
            frame, alpha=a
        ),
        "RecommendationModel.score": lambda a: model.score(people, alpha=a),
        "RecommendationModel.predict": lambda a: model.predict(model.encode(people), alpha=a),
    }
    for name, call in calls.items():
        call(0.1)  # accepted
        for alpha in TOO_SMALL:
            with pytest.raises(InputError, match="at least 1e-12"):
                call(alpha)
                pytest.fail(f"{name} took alpha={alpha}")
    for text in ("1e-20", "0", "1"):
        with pytest.raises(argparse.ArgumentTypeError, match="at least 1e-12"):
            cli_alpha(text)
    assert cli_alpha("1e-12") == 1e-12
    with pytest.raises(InputError, match="coverage"):
        ExplorationRule(coverage=1 - 2**-53)
    with pytest.raises(InputError) as caught:
        config_from_mapping({"evaluation": {"alpha": 1e-20}})
    assert "evaluation.alpha" in str(caught.value)


# -- 3. a ranking of usual care alone makes no order to judge -------------------------------


def test_a_ranking_of_usual_care_alone_is_neither_meaningful_nor_not():
    from recommender.policy import rank_arms, rank_many, rank_table

    alone = rank_arms({})
    assert [a.arm for a in alone.arms] == ["none"] and alone.meaningful is None
    assert not alone.benefit_established
    two = rank_arms({"coaching": (-5, -8, -2, -1, 1)})
    assert two.meaningful is True
    # the one-by-one and the table-wide paths (8 people and more) say the same
    for people in (1, 12):
        figures = [[(-5.0, -8.0, -2.0, *[math.nan] * 6)]] * people
        for allowed, said in ((False, None), (True, True)):
            ranked = rank_many(figures, ["coaching"], [[allowed]] * people)
            assert {r.meaningful for r in ranked} == {said}
    table = rank_table(
        [[-5.0], [-5.0]], [[-8.0], [-8.0]], [[-2.0], [-2.0]], ["coaching"], [[False], [True]]
    )
    assert table.ranking_meaningful.tolist() == [None, True]
    assert table.benefit_established.tolist() == [False, True]


def test_a_scored_table_leaves_it_missing_where_an_answer_says_null():
    from recommender.catalog import load_catalog
    from recommender.model import evidence_model

    model = evidence_model(load_catalog())
    people = pd.DataFrame([profile(person_id="p-app", role="app"), profile(person_id="p-md")])
    scored = model.score(people)
    assert scored["recommended"].tolist()[0] == "none"
    assert str(scored["ranking_meaningful"].dtype) == "boolean"
    assert pd.isna(scored["ranking_meaningful"].iloc[0])
    assert scored["ranking_meaningful"].iloc[1] in (True, False)


@pytest.fixture
def evidence_client(service_home, monkeypatch):  # noqa: F811
    """The service's ASGI app serving the evidence-only model of the real catalog."""
    from starlette.testclient import TestClient

    from recommender.catalog import load_catalog
    from recommender.model import evidence_model
    from recommender.service import service as service_module

    model = evidence_model(load_catalog())
    monkeypatch.setattr(service_module, "load_champion_model", lambda: (model, "1"))
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        yield client


def test_the_answer_for_an_app_says_null_and_the_openapi_says_when(evidence_client):
    answer = evidence_client.post(
        "/recommend", json=profile(role="app"), headers=auth("program")
    ).json()
    assert [a["arm"] for a in answer["ranking"]] == ["none"]
    assert answer["ranking_meaningful"] is None
    assert "ranks no intervention for them" in answer["ranking_note"]
    physician = evidence_client.post("/recommend", json=profile(), headers=auth("program"))
    assert physician.json()["ranking_meaningful"] in (True, False)
    schema = evidence_client.get("/docs.json").json()["components"]["schemas"]
    said = [
        s["properties"]["ranking_meaningful"]["description"]
        for s in schema.values()
        if "ranking_meaningful" in s.get("properties", {})
    ]
    assert said and all("usual care is the only arm ranked" in d for d in said)
