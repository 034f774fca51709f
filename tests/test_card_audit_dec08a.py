"""An auditor's reading of the model card against what it publishes (session dec08a).

Subgroup and fairness tables publish each cell's size and figures (means over its people) and
the totals above them. Whatever set of hidden cells those published totals determine, by
adding and subtracting them, has its size and its figures given away just as a shown cell's:
such a set must hold ``min_cell`` people or more. The first tables here are those of a model
retrained from a service log (``train --from-log``, 820 held-out people), where the figures
of two people, each the only one of their role and gender, came out of the role, gender and
role x gender totals.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from recommender.evaluation import subgroup_table
from recommender.policy import fairness_table

# The held-out role x gender counts of the loop model audited (card version 3).
LOOP_CELLS = {
    ("physician", "female"): 126,
    ("physician", "male"): 201,
    ("physician", "nonbinary"): 4,
    ("physician", "undisclosed"): 7,
    ("resident", "female"): 24,
    ("resident", "male"): 17,
    ("resident", "undisclosed"): 1,
    ("nurse", "female"): 319,
    ("nurse", "male"): 30,
    ("nurse", "nonbinary"): 2,
    ("nurse", "undisclosed"): 7,
    ("app", "female"): 54,
    ("app", "male"): 27,
    ("app", "undisclosed"): 1,
}


def _people(cells: dict) -> pd.DataFrame:
    rows = [(r, g) for (r, g), k in cells.items() for _ in range(k)]
    return pd.DataFrame(rows, columns=["role", "gender"])


def _loop_table() -> pd.DataFrame:
    groups = _people(LOOP_CELLS)
    n = len(groups)
    terms = np.random.default_rng(0).normal(4.0, 10.0, n)  # a DR term per person
    return subgroup_table(groups, ["coaching"] * n, [-5.0] * n, terms, arms=("none", "coaching"))


def _given_away(published: list[tuple[set, bool]], min_cell: int, sizes: dict) -> list[set]:
    """Sets of hidden cells whose total the published totals determine (an attacker adds and
    subtracts them), holding 1 to ``min_cell - 1`` people. ``published``: each total's cells
    and whether that total is shown."""
    hidden = sorted({c for cells, _ in published for c in cells if c not in _shown(published)})
    lines = [cells & set(hidden) for cells, shown in published if shown]
    basis = np.array([[c in line for c in hidden] for line in lines if line], dtype=float)
    if not len(basis):
        return []
    projection = np.linalg.pinv(basis) @ basis
    found = []
    for k in range(1, len(hidden) + 1):
        for subset in itertools.combinations(hidden, k):
            v = np.array([c in subset for c in hidden], dtype=float)
            if np.allclose(v @ projection, v, atol=1e-8):
                people = sum(sizes[c] for c in subset)
                if 0 < people < min_cell:
                    found.append(set(subset))
    return found


def _shown(published):
    return {next(iter(cells)) for cells, shown in published if shown and len(cells) == 1}


def _published_subgroups(table: pd.DataFrame) -> list[tuple[set, bool]]:
    """Every total the role, gender and role x gender tables show, as sets of their cells."""
    rows = table[table["grouping"] == "role x gender"]
    cells = [tuple(c.split(" x ")) for c in rows["cell"]]
    shown = dict(zip(cells, ~rows["suppressed"].to_numpy()))
    out = [({c}, bool(shown[c])) for c in cells]
    for grouping, position in (("role", 0), ("gender", 1)):
        part = table[table["grouping"] == grouping].set_index("cell")["suppressed"]
        for value, hidden in part.items():
            out.append(({c for c in cells if c[position] == value}, not hidden))
    out.append((set(cells), True))  # the held-out total, on the card
    return out


def test_loop_card_tables_give_no_small_group_away():
    table = _loop_table()
    given = _given_away(_published_subgroups(table), 11, LOOP_CELLS)
    assert given == [], f"hidden cells whose total the card's totals give away: {given}"


def test_the_two_undisclosed_people_cannot_be_recovered_by_subtraction():
    # The attack that worked on the audited card: role totals minus their shown cells, minus
    # the male total minus its shown cells, leaves the two people of undisclosed gender among
    # APPs and residents, with their mean doubly robust value.
    table = _loop_table().set_index(["grouping", "cell"])
    needed = [
        ("role", "app"),
        ("role", "resident"),
        ("gender", "male"),
        ("role x gender", "app x female"),
        ("role x gender", "resident x female"),
        ("role x gender", "nurse x male"),
        ("role x gender", "physician x male"),
    ]
    assert table.loc[needed, "suppressed"].any()


def test_nine_nurses_of_two_small_genders_are_not_given_away_by_the_role_total():
    table = _loop_table().set_index(["grouping", "cell"])
    nurse = [("role x gender", f"nurse x {g}") for g in ("female", "male")]
    # 358 nurses minus the 319 + 30 shown would leave the 9 of the two hidden genders
    assert table.loc[nurse, "suppressed"].any() or table.loc[("role", "nurse"), "suppressed"]


def test_a_table_without_small_sets_is_unchanged():
    # The demo model's held-out part: complementary suppression alone protects it.
    cells = {
        ("physician", "female"): 848,
        ("physician", "male"): 1455,
        ("physician", "nonbinary"): 37,
        ("physician", "undisclosed"): 32,
        ("resident", "female"): 365,
        ("resident", "male"): 336,
        ("resident", "nonbinary"): 6,
        ("resident", "undisclosed"): 18,
        ("nurse", "female"): 1985,
        ("nurse", "male"): 221,
        ("nurse", "nonbinary"): 25,
        ("nurse", "undisclosed"): 54,
        ("app", "female"): 446,
        ("app", "male"): 155,
        ("app", "nonbinary"): 7,
        ("app", "undisclosed"): 10,
    }
    groups = _people(cells)
    n = len(groups)
    table = subgroup_table(groups, ["a"] * n, [-1.0] * n, np.zeros(n), arms=("none", "a"))
    hidden = set(table.loc[table["suppressed"], "cell"])
    assert hidden == {
        "app x nonbinary",
        "app x undisclosed",
        "resident x nonbinary",
        "resident x undisclosed",
    }


@pytest.mark.parametrize("small", [(5, 4), (2, 1)])
def test_fairness_groups_hidden_together_hold_min_cell_people(small):
    # Two genders under min_cell: hiding both leaves their sum (the total minus the shown
    # genders) and their figures to be read; a third group must go with them.
    sizes = {"female": 300, "male": 200, "nonbinary": small[0], "undisclosed": small[1]}
    profiles = pd.DataFrame({"gender": [g for g, k in sizes.items() for _ in range(k)]})
    profiles["role"] = "physician"
    profiles["setting"] = "academic"
    n = len(profiles)
    assignment = pd.Series(["coaching"] * n, index=profiles.index)
    eligible = pd.DataFrame(True, index=profiles.index, columns=["coaching"])
    benefit = pd.DataFrame({"coaching": np.linspace(0, 8, n)}, index=profiles.index)
    table = fairness_table(assignment, eligible, benefit, profiles, min_cell=11)
    gender = table[(table["attribute"] == "gender") & (table["arm"] == "any")]
    hidden = gender.loc[gender["suppressed"], "group"].tolist()
    assert sum(sizes[g] for g in hidden) >= 11, hidden
    assert {"nonbinary", "undisclosed"} <= set(hidden)


def test_the_evidence_cards_table_names_which_finding_each_figure_is_and_how_certain():
    # The evidence-only card gave "mindfulness, nurse: -3.8 (-6.2 to -1.5), Collett G et al.
    # 2025": Collett's figure for nurses is SMD -0.90 (-8.6 points); -3.8 is its figure for
    # mixed groups of roles, and the row said neither that nor how certain it is (low).
    from test_card_kinds import evidence_card_facts

    table = evidence_card_facts()["evaluation"]["average_effects"]
    at = {c: i for i, c in enumerate(table["columns"])}
    rows = {(r[at["arm"]], r[at["role"]]): r for r in table["rows"]}
    nurse = rows[("mindfulness", "nurse")]
    assert nurse[at["effect"]] == -3.8
    assert "mixed groups" in nurse[at["population of the finding"]]
    assert nurse[at["certainty"]].startswith("Low (GRADE")
    assert all(r[at["certainty"]] and r[at["population of the finding"]] for r in rows.values())
    assert table["columns"][-1] == "in EE points by"


def test_the_evidence_card_does_not_say_its_95_percent_table_is_scaled():
    # "How the numbers were obtained" said the intervals were "scaled to the service's interval
    # level", beside a table headed and filled with the published 95 % bounds (the answers are
    # the ones rescaled, to 90 %).
    from test_card_kinds import evidence_card_facts

    facts = evidence_card_facts()
    first = facts["evaluation"]["notes"][0]
    assert "scaled to the service's interval level" not in first.split(";")[1]
    assert "95 %" in first and "answers" in first


def test_a_run_on_a_file_does_not_log_the_simulation_it_did_not_run(tmp_path, monkeypatch):
    # The demo model (trained on --data cohort.parquet) and the one retrained from the log
    # logged config.data.n 20000, config.data.assignment rct...: in MLflow's compare view the
    # log-trained run read as learnt from a simulated trial of 20,000, its card saying
    # "observational, 2,809 rows". The data section is read only when no file or log is given.
    from test_pipeline_train import sketch_plots, use_home
    from test_reproduce_dec06b import CONFIG  # a fast learner, and a data section

    import pipelines.train as train
    from recommender import registry
    from recommender.simulate import load_scenario, simulate_cohort

    use_home(monkeypatch, tmp_path / "home")
    sketch_plots(monkeypatch)
    data = tmp_path / "cohort.csv"
    simulate_cohort(load_scenario("default"), 1200, seed=9, assignment="rct").to_csv(
        data, index=False
    )
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG)
    result = train.run_training(config, data=data, reason="audit")
    params = registry.client().get_run(result.run_id).data.params
    assert not [k for k in params if k.startswith("config.data.")]
    assert params["data.sha256"] and params["rows.train"] == "840"
    assert params["config.learner.learner"] == "auto"  # the sections it read stay


def test_a_group_is_compared_with_the_others_by_the_interval_of_the_difference():
    # The card read "app: 2.77 (0.96 to 4.58), benefits, less than overall": the group's own
    # interval against the overall point (5.19), whose own uncertainty, and the group's share
    # of it, went unsaid. The difference from everyone else now has its own interval.
    rng = np.random.default_rng(1)
    groups = pd.DataFrame({"role": ["app"] * 300 + ["nurse"] * 900})
    terms = np.r_[rng.normal(2.0, 8.0, 300), rng.normal(5.0, 8.0, 900)]
    n = len(groups)
    table = subgroup_table(groups, ["a"] * n, [-1.0] * n, terms, arms=("none", "a"))
    app = table.set_index("cell").loc["app"]
    a, b = terms[:300], terms[300:]
    se = np.hypot(a.std(ddof=1) / np.sqrt(300), b.std(ddof=1) / np.sqrt(900))
    assert app["difference"] == pytest.approx(a.mean() - b.mean())
    assert app["difference_upper"] - app["difference"] == pytest.approx(1.6448536 * se)
    assert app["difference_lower"] < app["difference"] < app["difference_upper"]


def _card_with_subgroups(table: pd.DataFrame) -> dict:
    from recommender.card import subgroup_facts

    class Report:
        subgroups = table

    return {
        "evaluation": {"alpha": 0.1, "policy_values": {"rows": [["learned policy", 5.19]]}},
        "subgroups": subgroup_facts(Report(), min_cell=11),
    }


def test_the_card_reads_each_group_against_the_others_and_an_older_card_as_it_was():
    from recommender.card import render_markdown

    groups = pd.DataFrame({"role": ["app"] * 300 + ["nurse"] * 900})
    rng = np.random.default_rng(1)
    terms = np.r_[rng.normal(1.0, 8.0, 300), rng.normal(6.0, 8.0, 900)]
    n = len(groups)
    table = subgroup_table(groups, ["a"] * n, [-1.0] * n, terms, arms=("none", "a"))
    text = render_markdown(_card_with_subgroups(table))
    assert "against the others (interval)" in text
    app_row = next(line for line in text.splitlines() if "| role | app |" in line and "(" in line)
    assert "less than the others" in app_row
    # a card from before: the difference columns absent, the reading against the overall value
    old = table.drop(columns=["difference", "difference_lower", "difference_upper"])
    text = render_markdown(_card_with_subgroups(old))
    assert "against the others" not in text and "made before the difference" in text
    assert "overall" in next(
        line for line in text.splitlines() if "| role | app |" in line and "(" in line
    )


def test_only_totals_the_card_publishes_are_guarded_so_the_large_cells_stay():
    # Guarding the nonbinary column's total too (6 people, itself suppressed in the gender
    # table) hid every role x gender cell of the audited loop model; only the totals the
    # role and gender tables show, and the sum of those they hide, can be subtracted.
    table = _loop_table().set_index(["grouping", "cell"])
    for cell in ("nurse x female", "physician x female", "physician x male"):
        assert not table.loc[("role x gender", cell), "suppressed"], cell
    assert table.loc[("gender", "nonbinary"), "suppressed"]


def test_the_held_out_share_shows_the_share_held_out_when_it_differs_from_the_asked():
    from recommender.card._blocks import _training_data

    def share_row(**data):
        table = _training_data({"training_data": data})[0][1]
        return dict(table["rows"]).get("Held-out share")

    by_person = share_row(holdout_share=0.3, n_rows=2809, n_train=1989, n_holdout=820)
    assert by_person == "0.300 asked; 0.292 held out (820 of 2,809 rows)"
    assert share_row(holdout_share=0.3, n_rows=20000, n_train=14000, n_holdout=6000) == "0.300"
    assert share_row(holdout_share=0.3) == "0.300"  # a card written without the counts
