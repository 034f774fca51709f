"""Scenario files: the three shipped scenarios load, malformed ones fail naming the field, and
every assumption is a parameter (changing it changes the simulated cohort)."""

from __future__ import annotations

import copy
import re

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


def value(raw: dict, dotted: str):
    """The plain value at a parameter path, looking through tags ({value: ..., source: ...})."""
    node = raw
    for key in dotted.split("."):
        node = node["value"] if isinstance(node, dict) and "value" in node else node
        node = node[key]
    return node["value"] if isinstance(node, dict) and "value" in node else node


def set_value(raw: dict, dotted: str, new) -> None:
    """Replace the value at a parameter path, keeping its tag."""
    parent, _, last = dotted.rpartition(".")
    node = value(raw, parent) if parent else raw
    if isinstance(node.get(last), dict) and "value" in node[last]:
        node[last]["value"] = new
    else:
        node[last] = new


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


def test_a_folder_is_named_as_a_folder(tmp_path):
    with pytest.raises(InputError, match="is a folder; accepted: a .yaml file"):
        load_scenario(tmp_path)


@pytest.mark.parametrize("parent", ["null", "[default]", "''"])
def test_an_empty_or_bare_null_extends_is_named(tmp_path, parent):
    # `extends: null` (a variant of the null scenario) was read as no parent: every section
    # was then reported missing, and nothing said why.
    path = tmp_path / "variant.yaml"
    path.write_text(f"extends: {parent}\nname: variant\n")
    with pytest.raises(InputError, match=r"field 'extends' must be a scenario name or a path"):
        load_scenario(path)


def test_extends_the_null_scenario_quoted(tmp_path):
    path = tmp_path / "variant.yaml"
    path.write_text('extends: "null"\nname: variant\n')
    assert load_scenario(path).effects == load_scenario("null").effects


def _with_yoga(raw: dict) -> dict:
    """The default scenario with a sixth treatment arm, complete in every section."""
    raw = copy.deepcopy(raw)
    raw.update(name="yoga", arms=[*raw["arms"], "yoga"])
    raw["effects"]["yoga"] = copy.deepcopy(raw["effects"]["mindfulness"])
    observational = raw["assignment"]["observational"]
    for key in ("intercept", "severity", "hours"):
        observational[key]["value"]["yoga"] = 0.0
    observational["role"]["value"]["yoga"] = dict.fromkeys(
        ("physician", "resident", "nurse", "app"), 0.0
    )
    return raw


def test_an_arm_the_catalog_does_not_offer_is_refused_before_simulating(
    default_raw, tmp_path, capsys
):
    # The scenario was simulated and written; `validate` and training then refused every row of
    # the unknown arm.
    from recommender.cli import main

    path, out = tmp_path / "yoga.yaml", tmp_path / "cohort.csv"
    path.write_text(yaml.safe_dump(_with_yoga(default_raw)))
    assert load_scenario(path).arms[-1] == "yoga"  # a well-formed scenario in itself
    assert main(["simulate", "--scenario", str(path), "--n", "300", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--scenario: scenario" in err and "field 'arms' names 'yoga'" in err
    assert "accepted: the catalog's arms (none, coaching, mindfulness" in err
    assert not out.exists()


def test_check_catalog_names_unknown_arms_and_another_control():
    scenario = load_scenario("default")
    scenario.check_catalog(ARMS, "none")  # the shipped catalog's arms: accepted
    with pytest.raises(InputError) as caught:
        scenario.check_catalog(("usual_care", "coaching", "mindfulness"), "usual_care")
    message = str(caught.value)
    assert "field 'arms' names 'none', 'peer_group', 'resilience_training', 'balint_group'" in (
        message
    )
    assert "field 'control' is 'none'; accepted: the catalog's control arm 'usual_care'" in message
    assert len(caught.value.problems) == 2


def test_training_refuses_a_scenario_arm_the_catalog_does_not_offer(default_raw, tmp_path):
    from pipelines._train_cohort import load_stage
    from pipelines.train import load_config

    path = tmp_path / "yoga.yaml"
    path.write_text(yaml.safe_dump(_with_yoga(default_raw)))
    config = load_config(overrides={"data": {"scenario": str(path), "n": 2000}})
    with pytest.raises(InputError, match=r"^data\.scenario: scenario .*field 'arms' names 'yoga'"):
        load_stage(config)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (
            lambda r: value(r, "effects.coaching.by_role.nurse").update(ee="strong"),
            "effects.coaching.by_role.nurse.ee",
        ),
        (lambda r: set_value(r, "course.regression_to_mean", 1.5), "course.regression_to_mean"),
        (lambda r: r["baseline"].pop("sd"), "baseline.sd"),
        (lambda r: value(r, "population.roles").update(physician=0.9), "population.roles"),
        (
            lambda r: value(r, "population.gender.nurse").update(other=0.1),
            "population.gender.nurse.other",
        ),
        (
            lambda r: value(r, "baseline.correlation").update(ee_dp=0.95, ee_pa=0.95, dp_pa=-0.95),
            "baseline.correlation",
        ),
        (lambda r: r["effects"].pop("balint_group"), "effects.balint_group"),
        (lambda r: r.update(control="usual_care"), "control"),
        (
            lambda r: set_value(r, "assignment.observational.overlap_floor", 0.5),
            "assignment.observational.overlap_floor",
        ),
        (
            lambda r: set_value(r, "assignment.rct_shares", {"none": 0.5, "yoga": 0.5}),
            "assignment.rct_shares.yoga",
        ),
        (
            lambda r: r["effect_modifiers"].update(typo={"value": 1, "assumption": "x"}),
            "effect_modifiers.typo",
        ),
        # A negative SD named its section and printed Scores(ee=-1.0, ...), not the subscale.
        (lambda r: value(r, "baseline.sd").update(dp=-1.0), "baseline.sd.dp"),
        (lambda r: set_value(r, "course.noise_sd.pa", -2.0), "course.noise_sd.pa"),
        # A share is a probability: 1.5 was "in [0.0, inf]".
        (
            lambda r: set_value(r, "assignment.rct_shares", {"none": 1.5, "coaching": -0.5}),
            "assignment.rct_shares.none",
        ),
        # A mean outside the clipping bounds put every physician on the bound, silently.
        (
            lambda r: value(r, "population.years_in_practice.physician").update(mean=50.0),
            "population.years_in_practice.physician.mean",
        ),
        (
            lambda r: value(r, "population.weekly_hours.nurse").update(mean=10.0),
            "population.weekly_hours.nurse.mean",
        ),
        # A list (or an empty `description:`) became the text "[1, 2]" ("None").
        (lambda r: r.update(description=[1, 2]), "description"),
        (lambda r: r.update(description=None), "description"),
    ],
)
def test_malformed_field_is_named(default_raw, edit, field):
    raw = copy.deepcopy(default_raw)
    edit(raw)
    with pytest.raises(InputError) as caught:
        load_scenario(raw)
    assert f"'{field}'" in str(caught.value)
    assert any(field in problem for problem in caught.value.problems)


def test_an_unreadable_arm_list_is_the_one_problem_reported(default_raw):
    # `arms: none` was followed by one problem per arm-keyed entry (effects, every table of the
    # observational design): 26 problems burying the one that mattered.
    raw = copy.deepcopy(default_raw)
    raw["arms"] = "none"
    with pytest.raises(InputError) as caught:
        load_scenario(raw)
    assert caught.value.problems == [
        "field 'arms' must be a list of at least two arm names, got 'none'"
    ]


def test_arms_whose_oracle_columns_would_clash_are_refused(default_raw):
    # true_effect_dp_coaching is the DP oracle of 'coaching' and the EE oracle of 'dp_coaching':
    # the simulated table kept one of the two columns, silently.
    raw = _with_yoga(default_raw)
    raw["arms"][-1] = "dp_coaching"
    raw["effects"]["dp_coaching"] = raw["effects"].pop("yoga")
    observational = raw["assignment"]["observational"]
    for key in ("intercept", "severity", "hours", "role"):
        observational[key]["value"]["dp_coaching"] = observational[key]["value"].pop("yoga")
    with pytest.raises(InputError) as caught:
        load_scenario(raw)
    assert caught.value.problems == [
        "field 'arms' arm 'dp_coaching' would share its oracle column true_effect_dp_coaching "
        "with arm 'coaching''s DP effect; rename one of them"
    ]


def test_every_problem_is_reported_at_once(default_raw):
    raw = copy.deepcopy(default_raw)
    set_value(raw, "course.regression_to_mean", -1)
    value(raw, "baseline.hours_slope")["ee"] = None
    set_value(raw, "effects.mindfulness.time_demand", "lots")
    with pytest.raises(InputError) as caught:
        load_scenario(raw)
    assert len(caught.value.problems) == 3


def test_extends_merges_over_the_parent(tmp_path):
    path = tmp_path / "variant.yaml"
    path.write_text(
        "extends: default\nname: variant\n"
        "course: {regression_to_mean: {value: 0.3, assumption: a variant}}\n"
    )
    variant, default = load_scenario(path), load_scenario("default")
    assert variant.course.regression_to_mean == 0.3
    assert variant.course.noise_sd == default.course.noise_sd
    assert variant.effects == default.effects


_BASE = "extends: default\nname: base\ncourse: {regression_to_mean: {value: 0.3, assumption: x}}\n"


def test_a_relative_extends_is_read_beside_the_scenario_then_in_the_working_folder(
    tmp_path, monkeypatch
):
    # It was read in the working folder only: a program's scenarios, kept together in a folder
    # and run from another, could not extend one another by a path.
    (tmp_path / "program").mkdir()
    (tmp_path / "program" / "base.yaml").write_text(_BASE)
    (tmp_path / "program" / "variant.yaml").write_text("extends: ./base.yaml\nname: variant\n")
    work = tmp_path / "work"
    (work / "shared").mkdir(parents=True)
    (work / "shared" / "base.yaml").write_text(_BASE.replace("0.3", "0.4"))
    monkeypatch.chdir(work)
    assert load_scenario(tmp_path / "program" / "variant.yaml").course.regression_to_mean == 0.3
    # not beside it: the working folder's, as before
    (tmp_path / "program" / "other.yaml").write_text("extends: shared/base.yaml\nname: other\n")
    assert load_scenario(tmp_path / "program" / "other.yaml").course.regression_to_mean == 0.4


def test_a_missing_relative_extends_names_both_places_looked(tmp_path, monkeypatch):
    (tmp_path / "program").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    path = tmp_path / "program" / "variant.yaml"
    path.write_text("extends: ./bsae.yaml\nname: variant\n")
    with pytest.raises(InputError) as refused:
        load_scenario(path)
    message = str(refused.value)
    assert repr(str(tmp_path / "program" / "bsae.yaml")) in message
    assert repr(str(tmp_path / "work" / "bsae.yaml")) in message


def test_a_cycle_through_paths_written_differently_is_named(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "one.yaml").write_text("extends: ../b/two.yaml\nname: one\n")
    (tmp_path / "b" / "two.yaml").write_text("extends: ../a/./one.yaml\nname: two\n")
    with pytest.raises(InputError, match="'extends' forms a cycle"):
        load_scenario(tmp_path / "a" / "one.yaml")


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
        (lambda r: set_value(r, "course.regression_to_mean", 0.5), "ee_followup"),
        (lambda r: value(r, "course.drift.nurse").update(ee=5.0), "ee_followup"),
        (lambda r: set_value(r, "course.noise_sd.ee", 3.0), "ee_followup"),
        (lambda r: set_value(r, "baseline.hours_slope", {"ee": 6.0, "dp": 1.0, "pa": -0.5}), "ee"),
        (lambda r: value(r, "baseline.gender_shift.female").update(ee=6.0), "ee"),
        (lambda r: value(r, "baseline.role_means.nurse").update(dp=9.0), "dp"),
        (
            lambda r: set_value(r, "effects.mindfulness.by_role.nurse.ee", -6.0),
            "true_effect_mindfulness",
        ),
        (lambda r: value(r, "effects.coaching.career").update(mid=0.5), "true_effect_coaching"),
        (
            lambda r: set_value(r, "effects.balint_group.severity_slope", 0.0),
            "true_effect_balint_group",
        ),
        (
            lambda r: set_value(r, "effects.mindfulness.time_demand", 0.0),
            "true_effect_mindfulness",
        ),
        (lambda r: set_value(r, "effect_modifiers.hours_threshold", 40.0), "true_effect_coaching"),
        (lambda r: set_value(r, "effect_modifiers.effect_bound.ee", 3.0), "true_effect_coaching"),
        (lambda r: value(r, "population.weekly_hours.physician").update(mean=60.0), "weekly_hours"),
        (
            lambda r: set_value(
                r,
                "population.roles",
                {"physician": 0.7, "resident": 0.1, "nurse": 0.1, "app": 0.1},
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
    set_value(raw, "assignment.observational.strength", 0.0)
    flat = simulate_cohort(load_scenario(raw), 3000, seed=5, assignment="observational")
    # Strength 0: every arm equally likely for everyone.
    assert np.allclose(flat["propensity"], 1 / 6)
    confounded = simulate_cohort(
        load_scenario(default_raw), 3000, seed=5, assignment="observational"
    )
    assert confounded["propensity"].std() > 0.05


# -- tags: every parameter says where its number comes from ----------------------------------
def test_a_typod_parameter_without_a_tag_is_refused_naming_it(default_raw):
    raw = copy.deepcopy(default_raw)
    del raw["effects"]["coaching"]["severity_slope"]
    raw["effects"]["coaching"]["severity_slop"] = 0.8  # typo'd name, no tag
    with pytest.raises(InputError) as caught:
        load_scenario(raw)
    problems = caught.value.problems
    assert any("'effects.coaching.severity_slop' is not an accepted field" in p for p in problems)
    assert any("'effects.coaching.severity_slope' is missing" in p for p in problems)


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        # a bare number where a tagged parameter belongs
        (
            lambda r: r["course"].update(regression_to_mean=0.08),
            "course.regression_to_mean",
            "has no tag",
        ),
        # a tagged table with one part left bare
        (
            lambda r: r["course"]["drift"].update(nurse={"ee": 1.0, "dp": 0.3, "pa": -0.3}),
            "course.drift.nurse",
            "has no tag",
        ),
        # both tags, or neither
        (
            lambda r: r["effects"]["coaching"]["severity_slope"].update(source="Dyrbye 2019"),
            "effects.coaching.severity_slope",
            "exactly one of",
        ),
        (
            lambda r: r["effects"]["coaching"]["severity_slope"].pop("assumption"),
            "effects.coaching.severity_slope",
            "exactly one of",
        ),
        # a typo'd tag key
        (
            lambda r: r["effects"]["coaching"].update(
                time_demand={"value": 0.1, "asumption": "typo"}
            ),
            "effects.coaching.time_demand.asumption",
            "not an accepted key",
        ),
        # an assumption that names a study, and a source that names none
        (
            lambda r: r["effects"]["coaching"].update(
                severity_slope={"value": 0.3, "assumption": "as Collett 2025 suggests"}
            ),
            "effects.coaching.severity_slope.assumption",
            "never carries a study's name",
        ),
        (
            lambda r: r["effects"]["coaching"].update(
                severity_slope={"value": 0.3, "source": "common sense"}
            ),
            "effects.coaching.severity_slope.source",
            "Author Year",
        ),
    ],
)
def test_untagged_or_mistagged_parameters_are_refused(default_raw, edit, field, message):
    raw = copy.deepcopy(default_raw)
    edit(raw)
    with pytest.raises(InputError) as caught:
        load_scenario(raw)
    assert any(f"'{field}'" in p and message in p for p in caught.value.problems), caught.value


@pytest.mark.parametrize("name", ["default", "homogeneous", "null", "conservative"])
def test_every_parameter_of_every_shipped_scenario_is_tagged(name):
    scenario = load_scenario(name)
    tags = scenario.parameters
    assert tags and all(t.kind in ("source", "assumption") and t.text for t in tags.values())
    # Each top-level parameter of the tree is covered by a tag on it or on its parts.
    for section in ("population", "baseline", "course", "effect_modifiers"):
        fields = getattr(scenario, section).__dataclass_fields__
        for field in fields:
            path = f"{section}.{field}"
            assert any(p == path or p.startswith(path + ".") for p in tags), path


def test_an_extending_scenario_cannot_inherit_a_source_for_a_new_value(tmp_path):
    # A value changed without its own tag is refused, instead of keeping the parent's source.
    path = tmp_path / "variant.yaml"
    path.write_text("extends: default\nname: variant\neffects: {coaching: {severity_slope: 0.9}}\n")
    with pytest.raises(InputError, match=r"effects\.coaching\.severity_slope' has no tag"):
        load_scenario(path)


def test_no_persons_expected_effect_goes_beyond_the_bound():
    scenario = load_scenario("default")
    bound = scenario.effect_modifiers.effect_bound
    cohort = simulate_cohort(scenario, 20_000, seed=3)
    for prefix, limit in (
        ("true_effect_", bound.ee),
        ("true_effect_dp_", bound.dp),
        ("true_effect_pa_", bound.pa),
    ):
        values = cohort[[f"{prefix}{arm}" for arm in scenario.treatment_arms]].to_numpy()
        assert np.abs(values).max() <= limit + 1e-9
    # The bound binds: without it the severity multiplier takes coaching past it.
    assert (cohort["true_effect_coaching"] <= -bound.ee + 1e-9).mean() > 0.1


def test_conservative_is_the_default_with_every_effect_modifier_halved():
    default, conservative = load_scenario("default"), load_scenario("conservative")
    assert conservative.population == default.population
    assert conservative.baseline == default.baseline and conservative.course == default.course
    assert conservative.effect_modifiers == default.effect_modifiers
    for arm in default.treatment_arms:
        d, c = default.effects[arm], conservative.effects[arm]
        assert c.by_role == d.by_role
        assert c.severity_slope == pytest.approx(d.severity_slope / 2)
        assert c.time_demand == pytest.approx(d.time_demand / 2)
        for stage, multiplier in d.career.items():
            assert c.career[stage] == pytest.approx(1 + (multiplier - 1) / 2)


def _assumptions(node, path=""):
    if isinstance(node, dict):
        for key, child in node.items():
            if key == "assumption" and isinstance(child, str):
                yield path, child
            else:
                yield from _assumptions(child, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _assumptions(child, f"{path}[{i}]")


def test_no_assumption_carries_a_study_or_trial_name():
    # The parser refuses "Author Year" in an assumption; a trial's name (an acronym, a first
    # author's surname from the catalog's evidence) must not lend it a study's authority either.
    from recommender.simulate import STUDIES

    arms = catalog.load_catalog().arms
    surnames = {
        author.split()[0]
        for arm in arms
        for record in arm.evidence
        for author in (record.authors or "").split(",")
        if author.strip()
    }
    texts = [
        (f"{name}: {path}", text)
        for name in scenario_names()
        for path, text in _assumptions(
            yaml.safe_load(config_path(f"scenarios/{name}.yaml").read_text())
        )
    ]
    texts += [(study.name, study.source) for study in STUDIES if "*assumption*" in study.source]
    assert len(texts) > 40
    for where, text in texts:
        words = set(re.findall(r"[A-Za-z-]+", text))
        assert not words & surnames, (where, words & surnames)
        assert set(re.findall(r"\b[A-Z]{3,}\b", text)) <= {"MBI"}, (where, text)
