"""Scenario files: the three shipped scenarios load, malformed ones fail naming the field, and
every assumption is a parameter (changing it changes the simulated cohort)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml

from recommender import catalog
from recommender.errors import InputError
from recommender.paths import config_path
from recommender.simulate import load_scenario, scenario_names, simulate_cohort

ARMS = ("none", "coaching", "mindfulness", "peer_group", "resilience_training", "balint_group")


@pytest.fixture(scope="module")
def default_raw() -> dict:
    return yaml.safe_load(config_path("scenarios/default.yaml").read_text())


@pytest.mark.parametrize("name", ["default", "homogeneous", "null"])
def test_shipped_scenarios_load_with_catalog_arms(name):
    scenario = load_scenario(name)
    assert scenario.name == name
    assert scenario.arms == ARMS and scenario.control == "none"
    assert scenario.treatment_arms == ARMS[1:]
    assert set(scenario.effects) == set(ARMS[1:])


def test_scenario_names_lists_the_shipped_files():
    assert {"default", "homogeneous", "null"} <= set(scenario_names())


def test_arms_agree_with_the_catalog():
    assert set(load_scenario("default").arms) == set(catalog.load_catalog().arm_ids)


def test_load_by_path_and_mapping_give_the_same_scenario(default_raw, tmp_path):
    path = tmp_path / "copy.yaml"
    path.write_text(yaml.safe_dump(default_raw))
    assert (
        load_scenario(path) == load_scenario("default") == load_scenario(copy.deepcopy(default_raw))
    )


def test_unknown_scenario_names_what_is_accepted():
    with pytest.raises(InputError, match=r"unknown scenario 'nope'.*default"):
        load_scenario("nope")


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_scenario(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (
            lambda r: r["effects"]["coaching"]["by_role"]["nurse"].update(ee="strong"),
            "effects.coaching.by_role.nurse.ee",
        ),
        (lambda r: r["course"].update(regression_to_mean=1.5), "course.regression_to_mean"),
        (lambda r: r["baseline"].pop("sd"), "baseline.sd"),
        (lambda r: r["population"]["roles"].update(physician=0.9), "population.roles"),
        (
            lambda r: r["population"]["gender"]["nurse"].update(other=0.1),
            "population.gender.nurse.other",
        ),
        (
            lambda r: r["baseline"]["correlation"].update(ee_dp=0.95, ee_pa=0.95, dp_pa=-0.95),
            "baseline.correlation",
        ),
        (lambda r: r["effects"].pop("balint_group"), "effects.balint_group"),
        (lambda r: r.update(control="usual_care"), "control"),
        (
            lambda r: r["assignment"]["observational"].update(overlap_floor=0.5),
            "assignment.observational.overlap_floor",
        ),
        (
            lambda r: r["assignment"].update(rct_shares={"none": 0.5, "yoga": 0.5}),
            "assignment.rct_shares.yoga",
        ),
        (lambda r: r["effect_modifiers"].update(typo=1), "effect_modifiers.typo"),
    ],
)
def test_malformed_field_is_named(default_raw, edit, field):
    raw = copy.deepcopy(default_raw)
    edit(raw)
    with pytest.raises(InputError) as caught:
        load_scenario(raw)
    assert f"'{field}'" in str(caught.value)
    assert any(field in problem for problem in caught.value.problems)


def test_every_problem_is_reported_at_once(default_raw):
    raw = copy.deepcopy(default_raw)
    raw["course"]["regression_to_mean"] = -1
    raw["baseline"]["hours_slope"]["ee"] = None
    raw["effects"]["mindfulness"]["time_demand"] = "lots"
    with pytest.raises(InputError) as caught:
        load_scenario(raw)
    assert len(caught.value.problems) == 3


def test_extends_merges_over_the_parent(tmp_path):
    path = tmp_path / "variant.yaml"
    path.write_text("extends: default\nname: variant\ncourse: {regression_to_mean: 0.3}\n")
    variant, default = load_scenario(path), load_scenario("default")
    assert variant.course.regression_to_mean == 0.3
    assert variant.course.noise_sd == default.course.noise_sd
    assert variant.effects == default.effects


def test_scenario_is_frozen():
    scenario = load_scenario("default")
    with pytest.raises(AttributeError):
        scenario.name = "other"
    with pytest.raises(TypeError):
        scenario.population.roles["nurse"] = 1.0


# Every assumption is a parameter: changing one number in the file changes what is simulated.
@pytest.mark.parametrize(
    ("edit", "column"),
    [
        (lambda r: r["course"].update(regression_to_mean=0.5), "ee_followup"),
        (lambda r: r["course"]["drift"]["nurse"].update(ee=5.0), "ee_followup"),
        (lambda r: r["course"]["noise_sd"].update(ee=3.0), "ee_followup"),
        (lambda r: r["baseline"].update(hours_slope={"ee": 6.0, "dp": 1.0, "pa": -0.5}), "ee"),
        (lambda r: r["baseline"]["gender_shift"]["female"].update(ee=6.0), "ee"),
        (lambda r: r["baseline"]["role_means"]["nurse"].update(dp=9.0), "dp"),
        (
            lambda r: r["effects"]["mindfulness"]["by_role"]["nurse"].update(ee=-9.0),
            "true_effect_mindfulness",
        ),
        (lambda r: r["effects"]["coaching"]["career"].update(mid=0.5), "true_effect_coaching"),
        (
            lambda r: r["effects"]["balint_group"].update(severity_slope=0.0),
            "true_effect_balint_group",
        ),
        (lambda r: r["effects"]["mindfulness"].update(time_demand=0.0), "true_effect_mindfulness"),
        (lambda r: r["effect_modifiers"].update(hours_threshold=40.0), "true_effect_coaching"),
        (lambda r: r["population"]["weekly_hours"]["physician"].update(mean=60.0), "weekly_hours"),
        (
            lambda r: r["population"].update(
                roles={"physician": 0.7, "resident": 0.1, "nurse": 0.1, "app": 0.1}
            ),
            "role",
        ),
    ],
)
def test_changing_an_assumption_changes_the_cohort(default_raw, edit, column):
    raw = copy.deepcopy(default_raw)
    edit(raw)
    base = simulate_cohort(load_scenario(default_raw), 3000, seed=11)
    changed = simulate_cohort(load_scenario(raw), 3000, seed=11)
    assert not base[column].equals(changed[column])


def test_observational_strength_is_the_confounding_knob(default_raw):
    raw = copy.deepcopy(default_raw)
    raw["assignment"]["observational"]["strength"] = 0.0
    flat = simulate_cohort(load_scenario(raw), 3000, seed=5, assignment="observational")
    # Strength 0: every arm equally likely for everyone.
    assert np.allclose(flat["propensity"], 1 / 6)
    confounded = simulate_cohort(
        load_scenario(default_raw), 3000, seed=5, assignment="observational"
    )
    assert confounded["propensity"].std() > 0.05
