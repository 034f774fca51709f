"""Follow-ups found on 6 December: a training seed past the learners' limit, LightGBM
parameters in ``learner.params`` that LightGBM refuses, and what an evidence-only model tells
an advanced practice provider (APP), whom no published finding of the catalog concerns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipelines.train import config_from_mapping, run_training
from recommender.card import render_html, render_markdown
from recommender.catalog import load_catalog
from recommender.errors import InputError
from recommender.model import evidence_model
from recommender.uplift import SEED_LIMIT, GBMSpec, UpliftModel
from service_fixtures import _app, auth, profile, recommender_home, service_home  # noqa: F401

# -- 1. the training seed ------------------------------------------------------------------


def test_a_seed_past_the_learners_limit_is_refused_by_the_config_check():
    # Found: any seed >= 0 passed the check; 2**32 was refused only once fitting started.
    with pytest.raises(InputError) as caught:
        config_from_mapping({"seed": 2**32})
    assert caught.value.problems == [
        {
            "field": "seed",
            "value": str(2**32),
            "message": f"Input should be less than or equal to {SEED_LIMIT - 1}",
            "accepted": f"an integer from 0 to {SEED_LIMIT - 1}",
        }
    ]
    assert config_from_mapping({"seed": SEED_LIMIT - 1})["seed"] == SEED_LIMIT - 1


def test_the_config_takes_exactly_the_seeds_the_learners_take():
    UpliftModel(random_state=SEED_LIMIT - 1).check_parameters()
    with pytest.raises(InputError, match="random_state"):
        UpliftModel(random_state=SEED_LIMIT).check_parameters()


def test_a_training_run_with_such_a_seed_stops_before_anything_is_drawn_or_logged(tmp_path):
    home = tmp_path / "home"
    with recommender_home(home), pytest.raises(InputError, match=r"^training config .*seed = "):
        run_training(overrides={"seed": 2**40, "data": {"n": 200}})
    assert not home.exists() or not any(home.iterdir())


# -- 2. LightGBM parameters of a candidate (GBMSpec.extra) ---------------------------------


def _with_extra(extra) -> dict:
    return {"learner": {"params": {"outcome_candidates": [{"gbm": {"extra": extra}}]}}}


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        # unknown to LightGBM, with its closest name
        ({"bagging_fractio": 0.5}, "extra.bagging_fractio=0.5 (accepted: a LightGBM parameter"),
        ({"bagging_fractio": 0.5}, "did you mean 'bagging_fraction'?"),
        # wrongly typed or out of range, as LightGBM itself says
        ({"bagging_freq": 1.5}, "bagging_freq should be of type int"),
        ({"extra_trees": "maybe"}, "extra.extra_trees='maybe' (LightGBM refuses it"),
        ({"bagging_fraction": 2.0}, "(bagging_fraction) <= (1.0); accepted:"),
        ({"lambda_l1": {"a": 1}}, "extra.lambda_l1={'a': 1} (LightGBM refuses it"),
        # an alias of what a GBMSpec field or the learner sets would override it unseen
        ({"num_leaf": 3}, "num_leaf=3 (LightGBM's num_leaves, which GBMSpec's num_leaves"),
        ({"random_state": 3}, "which UpliftModel's random_state sets"),
        ({"early_stopping_rounds": 5}, "which GBMSpec's patience sets"),
        # each alone is accepted, together LightGBM refuses them
        ({"objective": "quantile", "alpha": 1.5}, "extra.objective+alpha={'objective': "),
        ({"objective": "quantile", "alpha": 1.5}, "refuses them together: Check failed"),
        # not parameters at all
        (["x"], "accepted: a mapping of LightGBM parameters to values"),
    ],
)
def test_lightgbm_parameters_are_checked_with_the_config(extra, said):
    with pytest.raises(InputError) as caught:
        config_from_mapping(_with_extra(extra))
    message = str(caught.value)
    assert message.startswith("training config: learner.params")
    assert said in message
    assert " at /" not in message  # LightGBM's source file and line are not the user's concern


def test_lightgbm_parameters_it_accepts_pass_with_their_types():
    extra = {
        "extra_trees": True,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "subsample_for_bin": 5000,  # an alias
        "monotone_constraints": [1, -1, 0],  # per feature: checked on as many columns
        "interaction_constraints": [[0, 1], [2]],
    }
    config = config_from_mapping(_with_extra(extra))
    assert config["learner"]["params"]["outcome_candidates"][0]["gbm"]["extra"] == extra


def test_a_library_user_gets_the_same_refusal_before_any_fit():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=60)})
    t = np.repeat(["none", "a"], 30)
    model = UpliftModel(learner="t", outcome_candidates=[GBMSpec(extra={"no_such": 1})])
    with pytest.raises(InputError, match=r"outcome_candidates\[0\]\.extra\.no_such=1"):
        model.fit(X, t, rng.normal(size=60))
    assert not hasattr(model, "arms_")


# -- 3. an APP and the evidence-only model -------------------------------------------------

NO_TRIAL = "No published trial or review in the catalog concerns advanced practice providers"


@pytest.fixture
def evidence_client(service_home, monkeypatch):  # noqa: F811
    """The service's ASGI app serving the model `train --evidence-only` builds from the
    real catalog, none of whose findings concerns APPs."""
    from starlette.testclient import TestClient

    from recommender.service import service as service_module

    model = evidence_model(load_catalog())
    monkeypatch.setattr(service_module, "load_champion_model", lambda: (model, "1"))
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        yield client


def _recommend(client, **changes) -> dict:
    response = client.post("/recommend", json=profile(**changes), headers=auth("program"))
    assert response.status_code == 200, response.text
    return response.json()


def test_an_app_is_told_plainly_that_no_trial_covers_their_role(evidence_client):
    # Found: the note said "These estimates rest on published trials alone ... everyone in
    # the same role gets the same figures" under a ranking of usual care alone.
    answer = _recommend(evidence_client, role="app")
    note = answer["ranking_note"]
    assert NO_TRIAL in note
    assert "ranks no intervention for them" in note and "not because it was found better" in note
    assert "rest on published trials alone (" not in note  # no citation where none applies
    assert [a["arm"] for a in answer["ranking"]] == ["none"]
    assert answer["safety"]["level"] == "routine"
    # a physician's answer still cites what it rests on
    physician = _recommend(evidence_client, role="physician")["ranking_note"]
    assert "rest on published trials alone (" in physician and NO_TRIAL not in physician


def test_a_severe_app_still_gets_the_referral_and_a_flagged_one_the_crisis_resources(
    evidence_client,
):
    severe = _recommend(evidence_client, role="app", ee=50, dp=25)
    assert severe["safety"]["level"] == "referral"
    assert severe["safety"]["referral"]["to"] and severe["safety"]["notice"]
    assert NO_TRIAL in severe["ranking_note"]
    flagged = _recommend(evidence_client, role="app", crisis_risk=True)
    assert flagged["safety"]["level"] == "crisis" and flagged["ranking"] == []
    assert flagged["recommended"] is None
    assert {r["name"] for r in flagged["safety"]["resources"]} >= {
        "988 Suicide & Crisis Lifeline (US)"
    }


def test_the_evidence_card_says_the_same_of_apps():
    from pipelines._train_evidence import evidence_card_facts
    from pipelines.train import load_config
    from recommender.registry import GateDecision, PolicyValue

    catalog = load_catalog()
    nothing = PolicyValue(math.nan, math.nan, math.nan, 0)
    card = evidence_card_facts(
        evidence_model(catalog),
        catalog,
        load_config(),
        gate=GateDecision(True, "there is no champion yet", 0.1, nothing),
        run_id="r",
        git_commit="c",
        versions={},
        previous_champion=None,
        created="2026-12-06 09:00:00",
    )
    said = [n for n in card["evaluation"]["notes"] if n.startswith(NO_TRIAL)]
    assert len(said) == 1 and "crisis resources" in said[0] and "referral" in said[0]
    assert said[0] in card["caveats"]
    for page in (render_markdown(card), render_html(card)):
        assert NO_TRIAL in " ".join(page.split())
    # roles the catalog's findings do concern are not said to be uncovered
    assert not [n for n in card["evaluation"]["notes"] if "concerns physicians" in n]
