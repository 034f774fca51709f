"""Eligibility: what the program offers, what the catalog allows, what the model knows."""

import pytest

from recommender.catalog import load_catalog
from recommender.errors import InputError
from recommender.policy import offered_arms

CATALOG = load_catalog()
NURSE = {"role": "nurse", "specialty": "other", "years_in_practice": 4}
PHYSICIAN = {"role": "physician", "specialty": "internal_medicine", "years_in_practice": 12}


def test_default_is_every_eligible_treatment_arm_in_catalog_order():
    arms, excluded = offered_arms(CATALOG, NURSE)
    expected = [a for a in CATALOG.eligible_arms(NURSE) if a != CATALOG.control]
    assert arms == expected
    assert {e.arm for e in excluded} == set(CATALOG.treatment_arms) - set(expected)
    assert all("not eligible" in e.reason and "nurse" in e.reason for e in excluded)


def test_offered_restricts_and_usual_care_in_the_list_is_ignored():
    arms, excluded = offered_arms(CATALOG, PHYSICIAN, offered=["peer_group", "none", "coaching"])
    assert arms == [a for a in CATALOG.treatment_arms if a in {"peer_group", "coaching"}]
    assert excluded == []


def test_arms_the_model_lacks_are_excluded_with_a_reason():
    arms, excluded = offered_arms(CATALOG, PHYSICIAN, modelled={"coaching"})
    assert arms == ["coaching"]
    assert all(
        "no estimate" in e.reason for e in excluded if e.arm in CATALOG.eligible_arms(PHYSICIAN)
    )


def test_unknown_arm_names_field_value_and_accepted():
    with pytest.raises(InputError) as caught:
        offered_arms(CATALOG, PHYSICIAN, offered=["coaching", "yoga"])
    message = str(caught.value)
    assert "offered[1]" in message and "'yoga'" in message and "coaching" in message
    assert caught.value.problems[0]["value"] == "yoga"
