"""Defects a data scientist's and an auditor's review of the CLI and the model card found
(session dec07h), each reproduced here before it was fixed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender.card import policy_summary
from recommender.cli import build_parser


def _physicians_mixed_after_55(n: int = 2000) -> tuple[pd.DataFrame, np.ndarray]:
    """Nurses get mindfulness, physicians coaching; among physicians over 55 three in ten get
    mindfulness, so a gini split on age lowers impurity while both its sides stay coaching."""
    rng = np.random.default_rng(0)
    profiles = pd.DataFrame(
        {
            "role": rng.choice(["nurse", "physician"], n),
            "age": rng.integers(25, 70, n).astype(float),
        }
    )
    recommended = np.where(profiles["role"] == "nurse", "mindfulness", "coaching").astype(object)
    older = (profiles["role"] == "physician") & (profiles["age"] > 55)
    recommended[older & (rng.random(n) < 0.3)] = "mindfulness"
    return profiles, recommended


def test_policy_summary_shows_no_split_whose_branches_recommend_the_same():
    # The card's policy summary read `age <= 55.5: coaching / age > 55.5: coaching` (and in a
    # trained card `age <= 62.5 / > 62.5`, both coaching): an auditor reads that age decides.
    profiles, recommended = _physicians_mixed_after_55()
    summary = policy_summary(profiles, recommended, max_depth=3)
    assert summary["rules"] == (
        "|--- role is not nurse\n"
        "|   |--- class: coaching\n"
        "|--- role is nurse\n"
        "|   |--- class: mindfulness\n"
    )
    # the same tree, only written shorter: what it reproduces is unchanged
    expected = np.where(profiles["role"] == "nurse", "mindfulness", "coaching")
    assert summary["fidelity"] == float(np.mean(expected == recommended))


def test_policy_summary_keeps_a_split_that_changes_the_recommendation():
    profiles, _ = _physicians_mixed_after_55()
    recommended = np.where(
        profiles["role"] == "nurse",
        "mindfulness",
        np.where(profiles["age"] > 55, "peer_group", "coaching"),
    )
    summary = policy_summary(profiles, recommended, max_depth=3)
    assert "age <= 55.5" in summary["rules"] and "age > 55.5" in summary["rules"]
    assert "class: peer_group" in summary["rules"]
    assert summary["fidelity"] == 1.0


@pytest.mark.parametrize(
    "argv, option",
    [
        (["train", "--seed", "7", "--data", "cohort.csv", "--seed", "8"], "--seed"),
        (["train", "--seed=7", "--seed", "8"], "--seed"),
        (
            ["score", "--data", "a.csv", "--out", "b.csv", "--alpha", "0.1", "--alpha=0.2"],
            "--alpha",
        ),
        (["promote", "3", "--reason", "reviewed", "--reason", "other"], "--reason"),
    ],
)
def test_a_one_value_option_given_twice_is_refused_naming_both(argv, option, capsys):
    # argparse kept the last value unsaid: `train --seed 7 ... --seed 8` trained seed 8
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(argv)
    assert stopped.value.code == 2
    said = capsys.readouterr().err
    assert f"argument {option}: given twice" in said and "give it once" in said


def test_an_option_given_twice_alike_or_a_repeatable_one_is_taken():
    args = build_parser().parse_args(["train", "--seed", "7", "--seed", "7"])
    assert args.seed == 7
    args = build_parser().parse_args(
        ["validate", "c.csv", "--extra-feature", "site", "--extra-feature", "unit"]
    )
    assert args.extra_feature == ["site", "unit"]


@pytest.mark.parametrize("command", ["card", "score"])
def test_a_model_the_store_lacks_is_refused_with_what_it_holds(
    command, trained, monkeypatch, tmp_path, capsys
):
    # `card --model 99` and `score --model challanger` named the store and nothing accepted,
    # where `promote 99` lists the versions and what each alias names
    from test_pipeline_train import use_home

    from recommender.cli import main

    from recommender.cohort import PROFILE_COLUMNS
    from recommender.simulate import load_scenario, simulate_cohort

    use_home(monkeypatch, trained[1])
    cohort = tmp_path / "cohort.csv"
    simulate_cohort(load_scenario("default"), 20, seed=3)[list(PROFILE_COLUMNS)].to_csv(
        cohort, index=False
    )
    given = {
        "card": ["card", "--model", "99", "--out", str(tmp_path / "card")],
        "score": ["score", "--model", "challanger", "--data", str(cohort), "--out", "s.csv"],
    }[command]
    assert main(given) == 2
    said = capsys.readouterr().err
    assert "no registered model version matches" in said
    assert "accepted: a registered version number (1)" in said
    assert "champion is version 1" in said and "models:/ or runs:/ URI" in said
    assert not (tmp_path / "card").exists()


def test_the_evidence_card_says_beside_each_study_how_its_figure_became_ee_points():
    # The evidence-only card's table gave "coaching, physician: -3.5 EE points, source Collett G
    # et al. 2025": the study reported an SMD of -0.37, and the 9.5-point SD that made it -3.5
    # is an assumption the table did not name (the evidence section, far below, did).
    from test_card_kinds import evidence_card_facts

    table = evidence_card_facts()["evaluation"]["average_effects"]
    assert table["columns"][-1] == "in EE points by"
    by = {(row[0], row[1]): row[-1] for row in table["rows"]}
    assert by[("coaching", "physician")] == "SMD x 9.5 (assumed SD of EE, see the header)"
    # the figures are in the row already; what else the catalog says of the conversion stays
    fendel = by[("mindfulness", "physician")]
    assert "assumed SD" in fendel and "treated as EE, an assumption" in fendel
    assert " = " not in fendel
    assert all(how for how in by.values())


def test_one_problem_is_said_in_the_singular(tmp_path, capsys):
    # `validate` said "INVALID: 1 problems in 1 checks" for a file with one bad value
    from recommender.cli import main
    from recommender.cohort import PROFILE_COLUMNS
    from recommender.simulate import load_scenario, simulate_cohort

    cohort = simulate_cohort(load_scenario("default"), 20, seed=3)[list(PROFILE_COLUMNS)]
    cohort["age"] = cohort["age"].astype(object)
    cohort.loc[4, "age"] = 150
    cohort.to_csv(tmp_path / "cohort.csv", index=False)
    assert main(["validate", str(tmp_path / "cohort.csv")]) == 2
    assert "INVALID: 1 problem in 1 check;" in capsys.readouterr().out


def test_the_one_effect_row_names_the_outcome_that_ranks_the_arms(trained):
    # The lineage table read "Chosen for pa: balint_group: one effect for everyone; coaching:
    # one effect for everyone; ..." and, below it, "Arms given one effect for everyone:
    # balint_group": the row was the primary outcome's and did not say so.
    import json

    from recommender.card import render_markdown

    result, _ = trained
    card = json.loads((result.card_folder / "card.json").read_text())
    assert card["model"]["one_effect_outcome"] == "ee"
    markdown = render_markdown(card)
    assert "| Arms given one effect for everyone in ee, which ranks the arms |" in markdown
    # a card written before the outcome was recorded keeps its row as it was
    del card["model"]["one_effect_outcome"]
    assert "| Arms given one effect for everyone |" in render_markdown(card)
