"""The card's fairness section: per role, gender and setting, the share recommended each arm
against the share eligible and the expected benefit (small cells suppressed); the features the
model uses; how often a protected attribute is among the leading reasons of its answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_model_fakes import LinearUplift, features, profiles

from recommender.card import fairness_facts, protected_reasons, render_html, render_markdown
from recommender.catalog import load_catalog
from recommender.model import RecommendationModel
from recommender.paths import config_path


class GenderUplift(LinearUplift):
    """LinearUplift whose coaching effect is 3 points larger for women, said in contributions."""

    def predict_effect(self, X):
        effect = super().predict_effect(X)
        effect["coaching"] -= 3.0 * (X["gender"].astype(str) == "female").to_numpy()
        return effect

    def contributions(self, X, arm, versus="none"):
        table = super().contributions(X, arm, versus)
        female = (X["gender"].astype(str) == "female").to_numpy()
        sign = (arm == "coaching") - (versus == "coaching")
        table["gender"] = -3.0 * female * sign
        return table


def model_over(learner_class, frame, *, drop=()):
    X = features(frame).drop(columns=list(drop))
    learners = {o: learner_class().fit(X, None, None) for o in ("ee", "dp", "pa")}
    return RecommendationModel(
        outcome_models=learners,
        features=X,
        catalog_version="test-1",
        catalog=load_catalog(config_path("interventions.yaml")),
    )


@pytest.fixture(scope="module")
def held_out():
    rows = profiles(3000, seed=4)
    # 8 nonbinary people: a gender cell under the 11-person floor; 40 undisclosed, the next
    # smallest, hidden with it.
    position = np.arange(3000)
    rows["gender"] = np.select(
        [position < 8, position < 48, position % 2 == 0],
        ["nonbinary", "undisclosed", "female"],
        "male",
    )
    return rows


def facts_for(model, rows, **kwargs):
    effects = model.predict_effect(rows)
    recommended = model.recommend(effects, eligible=model.eligibility(rows))
    return fairness_facts(model, rows, effects, recommended, min_cell=11, **kwargs), recommended


def test_shares_and_benefit_per_group_are_the_models_policy(held_out):
    model = model_over(GenderUplift, held_out)
    facts, recommended = facts_for(model, held_out)
    records = pd.DataFrame(facts["groups"])
    assert set(records["attribute"]) == {"role", "gender", "setting"}
    eligible = model.eligibility(held_out)
    effects = model.predict_effect(held_out)
    for role in ("physician", "nurse"):
        members = (held_out["role"] == role).to_numpy()
        for arm in model.treatment_arms:
            row = records[(records["group"] == role) & (records["arm"] == arm)].iloc[0]
            assert row["share_eligible"] == pytest.approx(eligible[arm][members].mean())
            assert row["share_allocated"] == pytest.approx((recommended[members] == arm).mean())
            # The model never recommends an arm the catalog does not offer the person.
            assert row["share_allocated"] <= row["share_eligible"]
        gained = np.array(
            [-effects.loc[i, a] if a != "none" else 0.0 for i, a in recommended[members].items()]
        )
        overall = records[(records["group"] == role) & (records["arm"] == "any")].iloc[0]
        assert overall["benefit_per_person"] == pytest.approx(gained.mean())
        assert overall["people"] == members.sum()
    # Women gain 3 points more from coaching: the table shows it.
    by_gender = records[(records["attribute"] == "gender") & (records["arm"] == "coaching")]
    shares = by_gender.set_index("group")["share_allocated"]
    assert shares["female"] > shares["male"] + 0.1


def test_small_cells_are_suppressed_with_the_next_smallest(held_out):
    facts, _ = facts_for(model_over(GenderUplift, held_out), held_out)
    gender = pd.DataFrame(facts["groups"]).query("attribute == 'gender'")
    hidden = set(gender.loc[gender["suppressed"], "group"])
    # nonbinary (8) is under the floor; the next smallest group goes with it so that the total
    # cannot reveal it.
    assert hidden == {"nonbinary", "undisclosed"}
    assert gender.loc[gender["suppressed"], ["people", "share_allocated"]].isna().all().all()
    html = render_html({"fairness": facts})
    assert "suppressed" in html and "By gender" in html


def test_protected_attribute_among_the_reasons_is_counted_exactly(held_out):
    model = model_over(GenderUplift, held_out)
    effects = model.predict_effect(held_out)
    recommended = model.recommend(effects, eligible=model.eligibility(held_out))
    reasons = protected_reasons(model, held_out, recommended, sample=100_000)
    with_arm = recommended != "none"
    assert reasons["explained"] == reasons["answers_with_arm"] == with_arm.sum()
    gender = next(a for a in reasons["attributes"] if a["attribute"] == "gender")
    # Gender contributes (3 points) exactly to women recommended coaching, and is then the
    # first reason whenever its 3 points exceed the EE score's part.
    coached_women = (
        with_arm & (recommended == "coaching") & (held_out["gender"] == "female")
    ).sum()
    assert gender["used"] and gender["share_top"] == pytest.approx(coached_women / with_arm.sum())
    assert 0 < gender["share_first"] <= gender["share_top"]
    age = next(a for a in reasons["attributes"] if a["attribute"] == "age")
    assert age["used"] and age["share_top"] == 0.0  # a feature that never contributes
    statements = render_markdown({"fairness": facts_for(model, held_out, sample=100_000)[0]})
    assert (
        f"Gender is a feature of this model. Of {with_arm.sum():,} held-out answers that "
        f"recommend an intervention, it is among the top 3 reasons in "
        f"{100 * gender['share_top']:.1f}%"
    ) in statements
    assert "Age is a feature of this model" in statements
    assert "it is never among the top 3 reasons" in statements


def test_a_sample_of_answers_is_explained_with_a_fixed_seed(held_out):
    model = model_over(GenderUplift, held_out)
    recommended = model.recommend(model.predict_effect(held_out))
    first = protected_reasons(model, held_out, recommended, sample=500, random_state=1)
    again = protected_reasons(model, held_out, recommended, sample=500, random_state=1)
    assert first == again and first["explained"] == 500 < first["answers_with_arm"]


def test_a_model_without_gender_lists_its_features_and_says_gender_is_not_used(held_out):
    model = model_over(LinearUplift, held_out, drop=["gender"])
    facts, _ = facts_for(model, held_out)
    assert "gender" not in facts["features"] and facts["excluded"] == ["gender"]
    gender = next(a for a in facts["reasons"]["attributes"] if a["attribute"] == "gender")
    assert gender == {"attribute": "gender", "used": False, "share_top": None, "share_first": None}
    # Fairness by gender is still reported: leaving gender out does not hide its groups.
    assert "gender" in {r["attribute"] for r in facts["groups"]}
    text = render_markdown({"fairness": facts})
    assert "Gender is not a feature of this model (left out in training)" in text
    assert "Left out at training (exclude_features): gender" in text
    assert "age, role, specialty" in text  # the features used, listed


def test_a_card_from_before_the_section_says_so():
    text = render_markdown({})
    section = text.split("## Fairness")[1].split("\n## ")[0]
    assert "not available" in section
