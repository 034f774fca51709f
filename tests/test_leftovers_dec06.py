"""Small gaps a user hit, closed on 2026-12-06, each checked as the user met it.

1. A plan's fairness table suppresses the groups the served model's card suppresses (its
   ``card.min_cell``), not always those under 11.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest

from recommender.model import model_min_cell
from service_fixtures import (  # noqa: F401  (fixtures)
    LinearModel,
    asgi_client,
    auth,
    profile,
    recommender_home,
    service_home,
    train_version,
)

# -- 1. the plan's smallest reported group is the model card's ----------------------------------


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"min_cell": 20}, 20),
        # trained before min_cell was recorded: its support's min_rows was card.min_cell
        ({"training_support": {"min_rows": 15}}, 15),
        ({"min_cell": 20, "training_support": {"min_rows": 11}}, 20),
        ({}, 11),  # an earlier evidence-only model: the card's default
        ({"min_cell": 5}, 11),  # never under the privacy floor
        ({"min_cell": "twenty"}, 11),
    ],
)
def test_model_min_cell_reads_the_card_setting_with_11_as_floor(metadata, expected):
    assert model_min_cell(SimpleNamespace(metadata=metadata)) == expected
    assert model_min_cell(object()) == 11  # a model without metadata


def _cohort_with_groups_of(sizes: dict[str, int]) -> list[dict]:
    # One role per group of the given size; everyone else as the stand-in profile.
    rows = []
    for role, n in sizes.items():
        rows += [profile(person_id=f"p{len(rows) + i}", role=role) for i in range(n)]
    return rows


def _role_rows(fairness: list[dict]) -> dict[str, dict]:
    return {r["group"]: r for r in fairness if r["attribute"] == "role" and r["arm"] == "any"}


@pytest.fixture
def linear_model():
    # A model whose training config set card.min_cell: 20.
    model = LinearModel()
    model.metadata = {"min_cell": 20}
    return model


def test_allocate_suppresses_the_groups_the_served_models_card_does(asgi_client):
    # 15 nurses: shown by a plan that always used 11, hidden by a card whose min_cell is 20.
    profiles = _cohort_with_groups_of({"physician": 40, "nurse": 15, "resident": 25})
    response = asgi_client.post(
        "/allocate", json={"profiles": profiles, "budget": 5000}, headers=auth("program")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["min_cell"] == 20
    roles = _role_rows(body["fairness"])
    assert roles["nurse"]["suppressed"] and roles["nurse"]["people"] is None
    # one group hidden: the next smallest too, so the total cannot give it away
    assert roles["resident"]["suppressed"]
    assert not roles["physician"]["suppressed"] and roles["physician"]["people"] == 40


def test_the_openapi_document_says_which_min_cell_applies(asgi_client):
    text = json.dumps(asgi_client.get("/docs.json").json())
    assert "groups under 11 people suppressed" not in text
    assert "groups under `min_cell` people suppressed" in text
    assert "The smallest group `fairness` reports on: the served model's card's" in text


@pytest.fixture(scope="module")
def home_with_min_cell_20(tmp_path_factory):
    home = tmp_path_factory.mktemp("min-cell-20")
    train_version(home, card={"min_cell": 20})
    return home


def test_recommender_allocate_plans_with_the_models_min_cell(
    home_with_min_cell_20, tmp_path, monkeypatch, capsys
):
    from recommender.cli import main
    from recommender.registry import load_champion
    from recommender.simulate import simulate_cohort

    cohort = simulate_cohort("default", 200, seed=3)
    cohort = cohort[[c for c in cohort.columns if not c.startswith("true_effect")]]
    sizes = cohort["role"].value_counts()
    assert 11 <= sizes["app"] < 20  # a group an 11-person floor would show
    data, out = tmp_path / "cohort.csv", tmp_path / "plan.csv"
    cohort.to_csv(data, index=False)
    monkeypatch.setenv("RECOMMENDER_ACTOR", "test-suite")
    with recommender_home(home_with_min_cell_20) as home:
        model, version = load_champion()
        assert model.metadata["min_cell"] == 20 == model_min_cell(model)
        card = json.loads((home / "cards" / version / "card.json").read_text())
        assert card["subgroups"]["min_cell"] == 20
        code = main(["allocate", "--data", str(data), "--out", str(out), "--budget", "20000"])
    said = capsys.readouterr()
    assert code == 0, said.err
    assert "groups under 20 people suppressed" in said.out
    fairness = pd.read_csv(out.with_name("plan.fairness.csv"))
    roles = fairness[(fairness["attribute"] == "role") & (fairness["arm"] == "any")]
    app = roles[roles["group"] == "app"].iloc[0]
    assert app["suppressed"] and pd.isna(app["people"])
    assert (roles.loc[~roles["suppressed"], "people"] >= 20).all()
