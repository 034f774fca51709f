"""Explanations: top contributions in EE points, one sentence, the catalog's evidence."""

import pytest

from recommender.catalog import load_catalog
from recommender.explain import evidence_for, explain, top_contributions

PROFILE = {"role": "physician", "ee": 33, "weekly_hours": 62.0, "age": 40}


def test_top_contributions_by_size_without_base_or_zeros():
    top = top_contributions(
        {"role": -1.5, "age": 0.0, "ee": 0.9, "weekly_hours": -0.2, "base": -9.0}, PROFILE, top=2
    )
    assert [(c.feature, c.value, c.points) for c in top] == [
        ("role", "physician", -1.5),
        ("ee", 33, 0.9),
    ]


def test_sentence_names_arm_size_interval_and_reasons():
    e = explain(
        recommended="coaching",
        runner_up="peer_group",
        effect=-4.2,
        lower=-7.0,
        upper=-1.4,
        runner_up_effect=-1.0,
        versus_usual_care={"role": -2.0, "ee": -1.0, "base": -1.2},
        versus_runner_up={"weekly_hours": -0.6, "base": -2.6},
        profile=PROFILE,
        names={"coaching": "Professional coaching", "peer_group": "Peer group"},
    )
    assert e.sentence.startswith(
        "Professional coaching is expected to lower emotional "
        "exhaustion by 4.2 points (90% interval: between 1.4 and 7.0 "
        "points lower)"
    )
    assert "role physician (-2.0)" in e.sentence
    assert "3.2 points better than Peer group" in e.sentence
    assert "weekly hours 62 (-0.6)" in e.sentence
    assert [c.feature for c in e.versus_runner_up] == ["weekly_hours"]


def test_interval_reaching_zero_is_said_in_words():
    e = explain(
        recommended="coaching",
        runner_up="none",
        effect=-1.0,
        lower=-2.5,
        upper=0.5,
        runner_up_effect=0.0,
        versus_usual_care={"ee": -1.0},
        versus_runner_up=None,
        profile=PROFILE,
    )
    assert "from 2.5 points lower to 0.5 points higher" in e.sentence
    assert "better than" not in e.sentence  # the runner-up is usual care: said once


def test_usual_care_recommended_names_the_closest_arm():
    e = explain(
        recommended="none",
        runner_up="mindfulness",
        effect=0.0,
        lower=0.0,
        upper=0.0,
        runner_up_effect=0.8,
        versus_usual_care=None,
        versus_runner_up={"ee": -0.5, "role": -0.3},
        profile=PROFILE,
    )
    assert e.versus_usual_care == ()
    assert e.sentence.startswith(
        "No offered intervention is expected to lower emotional exhaustion more than usual care"
    )
    assert "mindfulness (+0.8 points" in e.sentence


@pytest.mark.parametrize("arm", load_catalog().treatment_arms)
def test_every_arm_has_citable_evidence(arm):
    items = evidence_for(load_catalog(), arm)
    assert items and all(item["citation"] for item in items)
