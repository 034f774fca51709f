"""The card's model-estimated figures carry an interval, and an outcome with no personalised arm
is not labelled with a learner's name.

Found in review on a card of the `trained` fixture's settings: the fairness table's "EE points
avoided per person" and the subgroups' "mean predicted EE effect" were printed bare beside
policy values with intervals, and "Learner for pa | dr" was shown when every PA arm had one
effect for everyone (the doubly robust average each fell back to).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_card_fairness import GenderUplift, facts_for, model_over
from test_model_fakes import profiles

from recommender.card import render_html, render_markdown
from recommender.evaluation import evaluate_effects, predicted_mean, subgroup_table
from recommender.levels import two_sided_z

Z90 = two_sided_z(0.1)


def _section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


# ------------------------------------------------------------------ the interval itself
def test_one_effect_for_everyone_gets_the_models_own_interval():
    est = predicted_mean(np.full(50, -4.0), np.full(50, -6.0), np.full(50, -2.0), alpha=0.1)
    assert (est.estimate, est.lower, est.upper) == pytest.approx((-4.0, -6.0, -2.0))


def test_spread_over_people_widens_it_and_no_model_interval_gives_none():
    rng = np.random.default_rng(0)
    effect = rng.normal(-4.0, 2.0, 400)
    est = predicted_mean(effect, effect - 1.0, effect + 1.0, alpha=0.1)
    model_se, spread_se = 1.0 / Z90, effect.std(ddof=1) / np.sqrt(400)
    assert est.se == pytest.approx(np.hypot(model_se, spread_se))
    assert est.lower < effect.mean() - 1.0 and est.upper > effect.mean() + 1.0
    # a model that states no uncertainty is not given the spread alone as if it were exact
    assert np.isnan(predicted_mean(effect, alpha=0.1).lower)


# ------------------------------------------------------------------ subgroups
def _evaluated(with_bounds: bool):
    rng = np.random.default_rng(3)
    n = 600
    effects = pd.DataFrame({"coaching": rng.normal(-3.0, 1.0, n), "yoga": rng.normal(-2.0, 1, n)})
    scores = pd.DataFrame(
        {
            "none": rng.normal(0, 5, n),
            "coaching": rng.normal(-3, 5, n),
            "yoga": rng.normal(-2, 5, n),
        }
    )
    groups = pd.DataFrame({"role": np.where(np.arange(n) % 3 == 0, "nurse", "physician")})
    bounds = {"lower": effects - 2.0, "upper": effects + 2.0} if with_bounds else {}
    report = evaluate_effects(effects, scores, groups=groups, alpha=0.1, **bounds)
    return effects, report.subgroups.set_index("cell")


def test_each_subgroup_has_an_interval_of_its_mean_predicted_effect():
    effects, table = _evaluated(with_bounds=True)
    nurse = table.loc["nurse"]
    assert nurse["effect_lower"] < nurse["mean_predicted_effect"] < nurse["effect_upper"]
    # at least as wide as the model's own interval of each person (±2 points here)
    assert nurse["effect_upper"] - nurse["effect_lower"] >= 4.0 - 1e-9
    assert table.loc["nurse", "mean_predicted_effect"] == pytest.approx(
        effects.min(axis=1)[np.arange(len(effects)) % 3 == 0].mean()
    )
    _, bare = _evaluated(with_bounds=False)
    assert bare[["effect_lower", "effect_upper"]].isna().all().all()


def test_a_suppressed_subgroup_shows_no_effect_interval():
    groups = pd.DataFrame({"role": ["nurse"] * 5 + ["physician"] * 40 + ["app"] * 30})
    n = len(groups)
    table = subgroup_table(
        groups,
        np.array(["coaching"] * n, dtype=object),
        np.full(n, -3.0),
        np.full(n, 3.0) + np.arange(n) % 2,
        arms=("none", "coaching"),
        effect_lower=np.full(n, -5.0),
        effect_upper=np.full(n, -1.0),
    ).set_index("cell")
    assert table.loc["nurse", ["effect_lower", "effect_upper"]].isna().all()
    assert table.loc["physician", ["effect_lower", "effect_upper"]].tolist() == pytest.approx(
        [-5.0, -1.0]
    )


def _subgroup_card(with_interval: bool) -> dict:
    columns = ["grouping", "cell", "suppression", "n", "share_none", "share_coaching"]
    columns += ["mean_predicted_effect"]
    row = ["role", "nurse", "", 120, 0.0, 1.0, -4.49]
    if with_interval:
        columns += ["effect_lower", "effect_upper"]
        row += [-6.4, -2.58]
    columns += ["policy_value", "lower", "upper"]
    row += [5.62, 3.38, 7.87]
    return {
        "evaluation": {
            "alpha": 0.1,
            "policy_values": {
                "columns": ["policy", "estimate", "lower", "upper"],
                "rows": [["learned policy (this model)", 4.25, 2.66, 5.84]],
            },
        },
        "subgroups": {"min_cell": 11, "table": {"columns": columns, "rows": [row]}},
    }


def test_the_subgroup_table_prints_the_interval_and_says_what_it_is_of():
    text = _section(render_markdown(_subgroup_card(True)), "Subgroups")
    assert "| role | nurse | 120 | -4.49 (-6.40 to -2.58) | 5.62 | 3.38 to 7.87 |" in text
    assert "the model's own estimate" in text and "not a measured outcome" in text
    assert "-4.49 (-6.40 to -2.58)" in render_html(_subgroup_card(True))


def test_an_older_cards_subgroup_table_reads_as_it_did():
    text = _section(render_markdown(_subgroup_card(False)), "Subgroups")
    assert "| role | nurse | 120 | -4.49 | 5.62 | 3.38 to 7.87 |" in text
    assert "not a measured outcome" not in text


# ------------------------------------------------------------------ fairness
@pytest.fixture(scope="module")
def held_out():
    return profiles(1500, seed=11)


def test_each_groups_points_avoided_has_the_models_interval(held_out):
    model = model_over(GenderUplift, held_out)
    effects = model.predict_effect(held_out)
    lower, upper = effects - 1.5, effects + 1.5
    facts, recommended = facts_for(model, held_out, lower=lower, upper=upper, alpha=0.1)
    shown = [r for r in facts["groups"] if r["arm"] == "any" and not r["suppressed"]]
    assert shown
    for record in shown:
        assert record["benefit_lower"] < record["benefit_per_person"] < record["benefit_upper"]
    physician = next(r for r in shown if r["group"] == "physician")
    members = (held_out["role"] == "physician").to_numpy()
    gained = np.array(
        [-effects.loc[i, a] if a != "none" else 0.0 for i, a in recommended[members].items()]
    )
    # the model's own ±1.5 on everyone recommended an arm, plus the spread over people
    given = np.mean(recommended[members] != "none")
    expected = np.hypot(1.5 * given / Z90, gained.std(ddof=1) / np.sqrt(members.sum()))
    assert physician["benefit_upper"] - physician["benefit_per_person"] == pytest.approx(
        Z90 * expected
    )
    for record in facts["groups"]:
        if record["suppressed"] or record["arm"] != "any":
            assert "benefit_lower" not in record or record["benefit_lower"] is None
    text = _section(
        render_markdown({"fairness": facts}), "Fairness: groups, features and protected attributes"
    )
    cell = f"{physician['benefit_per_person']:.2f} ({physician['benefit_lower']:.2f} to "
    assert cell in text
    assert "90% interval is the model's uncertainty" in text and "not a measured outcome" in text
    assert cell in render_html({"fairness": facts})


def test_an_older_cards_fairness_table_reads_as_it_did(held_out):
    model = model_over(GenderUplift, held_out)
    facts, _ = facts_for(model, held_out)
    assert "alpha" not in facts or facts["alpha"] is None
    text = render_markdown({"fairness": facts})
    physician = next(r for r in facts["groups"] if r["group"] == "physician" and r["arm"] == "any")
    assert f"| {physician['benefit_per_person']:.3f} |" in text
    assert "(the model's own interval)" not in text and "not a measured outcome" not in text


# ------------------------------------------------------------------ learner rows
ONE = "one effect per arm, the same for everyone (personalising added nothing measurable)"


def _model_facts(**model) -> dict:
    return {"model": {"learners": {"ee": "mixed", "pa": "dr"}, **model}}


def test_an_outcome_whose_arms_all_got_one_effect_says_so_not_its_learners_name():
    md = render_markdown(_model_facts(one_effect_outcomes=["pa"]))
    assert f"| Learner for pa | {ONE} |" in md
    assert "| Learner for ee | mixed |" in md
    assert "| Learner for pa | dr |" not in md


def test_an_older_card_reads_it_from_the_learner_choice_it_recorded():
    choice = {
        "rule": "chosen by learner: auto",
        "outcomes": {
            "ee": {"coaching": ["one effect for everyone"], "yoga": ["dr gbm(leaves=4)"]},
            "pa": {"coaching": ["one effect for everyone"], "yoga": ["one effect for everyone"]},
        },
    }
    md = render_markdown(_model_facts(learner_choice=choice))
    assert f"| Learner for pa | {ONE} |" in md
    assert "| Learner for ee | mixed |" in md
    # and a card that recorded neither keeps its learner's name
    assert "| Learner for pa | dr |" in render_markdown(_model_facts())


# ------------------------------------------------------------------ a real trained model
def test_a_trained_models_card_has_every_interval_and_no_misleading_learner(trained):
    result, _ = trained
    card = json.loads((result.card_folder / "card.json").read_text())
    markdown = render_markdown(card)
    model = card["model"]
    # the fixture's settings give every PA arm one effect for everyone (the review's case)
    assert "pa" in model["one_effect_outcomes"]
    for outcome in model["one_effect_outcomes"]:
        assert f"| Learner for {outcome} | {ONE} |" in markdown
    columns = card["subgroups"]["table"]["columns"]
    at = {c: i for i, c in enumerate(columns)}
    rows = [r for r in card["subgroups"]["table"]["rows"] if isinstance(r[at["n"]], int)]
    assert rows
    for row in rows:
        lower, effect, upper = (
            row[at[c]] for c in ("effect_lower", "mean_predicted_effect", "effect_upper")
        )
        assert lower < effect < upper
    shown = [r for r in card["fairness"]["groups"] if r["arm"] == "any" and not r["suppressed"]]
    assert shown and all(
        r["benefit_lower"] < r["benefit_per_person"] < r["benefit_upper"] for r in shown
    )
    assert "EE points avoided per person (the model's own interval)" in markdown
