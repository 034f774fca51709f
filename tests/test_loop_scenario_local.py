"""The ``local`` scenario: a program whose own staff respond differently from the published
trials. It loads, it is listed, its effects differ from the default's exactly where its file
says (and by the story's factors), every changed parameter is an assumption, and everything
else, the simulated people included, is the default's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from recommender.cli import main
from recommender.cohort import CATEGORIES
from recommender.paths import config_path
from recommender.simulate import load_scenario, scenario_names, simulate_cohort

ROLES = CATEGORIES["role"]


@pytest.fixture(scope="module")
def local():
    return load_scenario("local")


@pytest.fixture(scope="module")
def default():
    return load_scenario("default")


def _tagged_paths(node, path=""):
    """Every parameter path the file itself tags (``{value: ..., assumption/source: ...}``)."""
    if not isinstance(node, dict):
        return set()
    if "value" in node:
        return {path}
    return set().union(
        *(_tagged_paths(child, f"{path}.{key}" if path else key) for key, child in node.items())
    )


def _changed_effect_paths(local, default) -> set[str]:
    """(arm, field, role) paths whose values differ between the two scenarios' effects."""
    changed = set()
    for arm in default.treatment_arms:
        mine, theirs = local.effects[arm], default.effects[arm]
        for role in ROLES:
            if mine.by_role[role] != theirs.by_role[role]:
                changed.add(f"effects.{arm}.by_role.{role}")
        for name in ("career", "severity_slope", "time_demand"):
            if getattr(mine, name) != getattr(theirs, name):
                changed.add(f"effects.{arm}.{name}")
    return changed


def test_local_is_listed_and_described_as_the_transfer_question(local):
    assert "local" in scenario_names()
    assert local.name == "local"
    assert local.description.startswith(
        "What if the published evidence does not transfer to this program"
    )


def test_only_the_effects_differ_from_the_default(local, default):
    for section in ("population", "baseline", "course", "effect_modifiers", "assignment"):
        assert getattr(local, section) == getattr(default, section), section
    assert (local.control, local.arms) == (default.control, default.arms)
    assert local != default  # the effects are what differ


def test_effects_differ_exactly_where_the_file_says(local, default):
    raw = yaml.safe_load(config_path("scenarios/local.yaml").read_text())
    written = _tagged_paths(raw["effects"], "effects")
    changed = _changed_effect_paths(local, default)
    # Every difference from the default is written in the file ...
    for path in changed:
        assert any(path == w or path.startswith(w + ".") for w in written), path
    # ... and every table the file writes changes something (a role restated with the
    # default's numbers inside a changed table is allowed, the table itself must change).
    for w in written:
        assert any(c == w or c.startswith(w + ".") for c in changed), w
    assert changed == {
        *(f"effects.coaching.by_role.{role}" for role in ROLES),
        *(f"effects.peer_group.by_role.{role}" for role in ("physician", "resident", "app")),
        "effects.balint_group.by_role.physician",
    }


def test_changes_follow_the_story_written_in_the_file(local, default):
    def ratio(arm, role):
        mine = local.effects[arm].by_role[role].as_array()
        theirs = default.effects[arm].by_role[role].as_array()
        return mine / theirs

    for role in ROLES:  # in-house coaches: half the published effect, every role
        np.testing.assert_allclose(ratio("coaching", role), 0.5)
    for role in ("physician", "resident", "app"):  # facilitated peer groups: 1.5 times
        np.testing.assert_allclose(ratio("peer_group", role), 1.5)
    np.testing.assert_allclose(ratio("peer_group", "nurse"), 1.0)
    np.testing.assert_allclose(ratio("balint_group", "physician"), 2.0)  # trained leaders
    for role in ("resident", "nurse", "app"):
        np.testing.assert_allclose(ratio("balint_group", role), 1.0)
    for arm in ("mindfulness", "resilience_training"):
        assert local.effects[arm] == default.effects[arm]


def test_every_changed_parameter_is_an_assumption_with_a_reason(local):
    raw = yaml.safe_load(config_path("scenarios/local.yaml").read_text())
    for path in _tagged_paths(raw["effects"], "effects"):
        tag = local.parameters[path]
        assert tag.kind == "assumption" and tag.text, path
    # The default's own source on the physicians' peer-group effect is not inherited.
    assert local.parameters["effects.peer_group.by_role.physician"].kind == "assumption"


def test_same_people_different_true_effects(local, default):
    ours = simulate_cohort(local, 3000, seed=11, assignment="rct")
    theirs = simulate_cohort(default, 3000, seed=11, assignment="rct")
    profile = ["person_id", "role", "years_in_practice", "weekly_hours", "ee", "dp", "pa"]
    pd.testing.assert_frame_equal(ours[profile], theirs[profile])
    for arm in ("mindfulness", "resilience_training"):
        np.testing.assert_array_equal(ours[f"true_effect_{arm}"], theirs[f"true_effect_{arm}"])
    physician = (ours["role"] == "physician").to_numpy()
    nurse = (ours["role"] == "nurse").to_numpy()
    # Coaching helps less here (EE effects are negative: a higher mean is a smaller benefit).
    assert ours["true_effect_coaching"].mean() > theirs["true_effect_coaching"].mean() + 0.8
    # Balint groups help physicians more, and nobody else differently.
    assert (
        ours["true_effect_balint_group"][physician].mean()
        < theirs["true_effect_balint_group"][physician].mean() - 1.0
    )
    np.testing.assert_array_equal(
        ours["true_effect_balint_group"][~physician], theirs["true_effect_balint_group"][~physician]
    )
    # Peer groups help more, except nurses (not offered them in the catalog).
    np.testing.assert_array_equal(
        ours["true_effect_peer_group"][nurse], theirs["true_effect_peer_group"][nurse]
    )
    assert (
        ours["true_effect_peer_group"][physician].mean()
        < theirs["true_effect_peer_group"][physician].mean() - 0.5
    )


def test_recommender_simulate_runs_the_local_scenario(tmp_path, capsys):
    out = tmp_path / "local.csv"
    argv = ["simulate", "--scenario", "local", "--n", "1500", "--seed", "3", "--out", str(out)]
    assert main(argv) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 1500
    expected = simulate_cohort("local", 1500, seed=3, assignment="rct")
    np.testing.assert_allclose(
        frame["true_effect_coaching"].to_numpy(), expected["true_effect_coaching"].to_numpy()
    )
    assert str(out) in capsys.readouterr().out
