"""What each kind of model's card tells an auditor: no sentence written for another kind of
model, and a reason wherever a figure or a section cannot be given.

Found reading real cards (notes/redcard): the evidence-only model's card said its figures were
"on the held-out part (0 people), which the model never saw ... estimated doubly robustly, with
90% confidence intervals" above a table of published 95 % intervals, that its fairness section
was missing because "this card was made before the fairness section existed", and called itself
an uplift model of every burnout subscale.
"""

from __future__ import annotations

import math

import pytest

from recommender.card import render_html, render_markdown


@pytest.fixture(scope="module")
def evidence_card():
    return evidence_card_facts()


def evidence_card_facts() -> dict:
    """The evidence-only model's card facts, as `train --evidence-only` writes them."""
    from pipelines._train_evidence import evidence_card_facts
    from pipelines.train import load_config
    from recommender.catalog import load_catalog
    from recommender.model import evidence_model
    from recommender.registry import GateDecision, PolicyValue

    catalog = load_catalog()
    nothing = PolicyValue(math.nan, math.nan, math.nan, 0)
    gate = GateDecision(True, "there is no champion yet", 0.1, nothing)
    return evidence_card_facts(
        evidence_model(catalog),
        catalog,
        load_config(),
        gate=gate,
        run_id="r",
        git_commit="c",
        versions={},
        previous_champion=None,
        created="2026-12-05 07:00:00",
    )


def _section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_evidence_card_says_its_figures_are_published_not_measured(evidence_card):
    md = render_markdown(evidence_card)
    evaluation = _section(md, "Evaluation")
    assert "on the held-out part" not in evaluation and "doubly robust" not in evaluation
    assert "published" in evaluation and "no held-out" in evaluation
    details = _section(md, "Model details and lineage")
    assert "uplift model" not in details and "subscale scores" not in details
    assert "not fitted to any data" in details.lower()


def test_the_evidence_card_says_why_each_breakdown_is_missing(evidence_card):
    md = render_markdown(evidence_card)
    assert "before the fairness section existed" not in md
    for title in ("Subgroups", "Recommendation mix", "Policy summary"):
        text = _section(md, title)
        assert "no data of this program" in text.lower() or "no program data" in text.lower(), (
            title,
            text,
        )
    fairness = _section(md, "Fairness: groups, features and protected attributes")
    assert "role" in fairness and "gender" in fairness and "never" in fairness


def test_the_evidence_card_has_no_caveat_about_held_out_data_it_does_not_have(evidence_card):
    caveats = _section(render_markdown(evidence_card), "Caveats and recommendations")
    assert "held-out" not in caveats and "other generators" not in caveats
    assert "published" in caveats


def test_the_evidence_card_renders_the_same_in_html(evidence_card):
    page = render_html(evidence_card)
    assert "before the fairness section existed" not in page
    assert "(0 people)" not in page


@pytest.fixture(scope="module")
def log_card():
    return log_card_facts()


def log_card_facts():
    """The card of a model retrained from a log where peer groups were served too rarely to
    learn (carried over from the evidence-only model), as the training pipeline makes it,
    and the evaluation it was made from."""
    from test_loop_carry import RARE, SETTINGS, _log, _retrain

    from pipelines._train_card import card_facts
    from pipelines._train_config import config_from_mapping
    from recommender.catalog import load_catalog
    from recommender.model import evidence_model
    from recommender.registry import GateDecision, PolicyValue

    catalog = load_catalog()
    model, cohort, split, evaluation = _retrain(_log(RARE), catalog, evidence_model(catalog))
    nothing = PolicyValue(math.nan, math.nan, math.nan, 0)
    facts = card_facts(
        model,
        evaluation,
        split,
        cohort,
        config_from_mapping(SETTINGS),
        gate=GateDecision(True, "there is no champion yet", 0.1, nothing),
        run_id="r",
        git_commit="c",
        versions={},
    )
    return facts, evaluation


def test_a_log_card_says_people_are_held_out_and_whose_probabilities_were_logged(log_card):
    facts, _ = log_card
    data = facts["training_data"]
    # README: a from-log run holds out people, not a stratified share of rows
    assert "stratified" not in data["split"] and "person" in data["split"]
    assert "trial" not in data["propensity"] and "service" in data["propensity"]


def test_a_log_card_says_its_tables_measure_only_the_learnt_arms(log_card):
    facts, evaluation = log_card
    carried = [c["arm"] for c in facts["training_data"]["loop"]["carried_arms"]]
    assert "peer_group" in carried
    picked = int((evaluation.recommended == "peer_group").sum())
    assert picked > 0  # the served policy picks a carried arm for some held-out people
    md = render_markdown(facts)
    evaluation_text = _section(md, "Evaluation")
    assert "learnt arms" in evaluation_text
    for arm in carried:
        assert arm in evaluation_text
    whole = facts["evaluation"]["secondary"]["rows"][0]
    assert f"{whole[2]:.2f}" in evaluation_text  # the whole policy's value, as gated
    labels = [row[0] for row in facts["evaluation"]["policy_values"]["rows"]]
    assert "learned policy (this model)" not in labels
    subgroups = _section(md, "Subgroups")
    assert "learnt arms" in subgroups and "Recommendation mix" in subgroups


def test_mlflow_recommendation_shares_are_the_mix_the_card_shows(log_card):
    # Seen on a real from-log run: MLflow logged coaching 0.4316 (the learnt arms' policy)
    # while the card's mix, the served policy, said 0.430 and peer groups 0.002.
    facts, evaluation = log_card
    mix = {row[0]: row[2] for row in facts["recommendation_mix"]["rows"]}
    logged = {
        key.split(".", 1)[1]: value
        for key, value in evaluation.metrics.items()
        if key.startswith("recommendation_share.")
    }
    assert logged == pytest.approx(mix, abs=1e-12)


def test_fairness_tables_count_people_in_whole_numbers():
    # Seen on every trained card with a suppressed group: "app | 90.000 | 100% / 100% | ..."
    # in the people column (the column held NaN for the suppressed group, so floats).
    import pandas as pd

    from recommender.policy import fairness_records, fairness_table

    roles = ["physician"] * 30 + ["nurse"] * 20 + ["app"] * 5
    profiles = pd.DataFrame({"role": roles, "gender": "female", "setting": "rural"})
    benefit = pd.DataFrame({"coaching": [2.0] * len(roles)})
    eligible = pd.DataFrame({"coaching": [True] * len(roles)})
    given = pd.Series(["coaching"] * len(roles))
    table = fairness_table(given, eligible, benefit, profiles, control="none", min_cell=11)
    records = fairness_records(table)
    assert any(r["suppressed"] for r in records)
    people = [r["people"] for r in records if not r["suppressed"]]
    assert people and all(type(p) is int for p in people), people
    facts = {
        "fairness": {
            "n": len(roles),
            "min_cell": 11,
            "arms": ["coaching"],
            "groups": records,
            "features": ["role"],
            "excluded": [],
            "reasons": {},
        }
    }
    fairness = _section(
        render_markdown(facts), "Fairness: groups, features and protected attributes"
    )
    cells = [
        line.split("|")[2].strip()
        for line in fairness.splitlines()
        if line.startswith("| ") and not line.startswith("| group")
    ]
    assert "30" in cells and all("." not in cell for cell in cells), cells


def _subgroup_facts(cells):
    """Card facts with a learned policy worth 4.25 overall and the given subgroup cells
    ``(cell, n, value, lower, upper)``, as the training pipeline writes them."""
    columns = ["grouping", "cell", "suppression", "n", "share_none", "share_coaching"]
    columns += ["mean_predicted_effect", "policy_value", "lower", "upper"]
    rows = [["role", c, "", n, 0.0, 1.0, -5.0, v, lo, hi] for c, n, v, lo, hi in cells]
    return {
        "evaluation": {
            "alpha": 0.1,
            "policy_values": {
                "columns": ["policy", "estimate", "lower", "upper"],
                "rows": [["learned policy (this model)", 4.25, 2.66, 5.84]],
            },
        },
        "subgroups": {"min_cell": 11, "table": {"columns": columns, "rows": rows}},
    }


def test_subgroup_values_say_which_groups_are_too_small_to_judge():
    # Seen on a simulated card: "nurse x male | 28 | ... | -0.69 | -11.40 to 10.03" and
    # "age 18-29 | -4.06 | -8.07 to -0.06" read alike, with nothing to tell an auditor that
    # the first says nothing and the second says the policy did worse than usual care.
    facts = _subgroup_facts(
        [
            ("nurse x male", 28, -0.69, -11.40, 10.03),
            ("18-29", 137, -4.06, -8.07, -0.06),
            ("physician", 347, 6.59, 4.01, 9.18),
            ("nurse", 349, 3.28, 0.71, 5.85),
            ("community", 424, 6.61, 4.27, 8.95),
        ]
    )
    text = _section(render_markdown(facts), "Subgroups")
    rows = {line.split("|")[2].strip(): line for line in text.splitlines() if "|" in line}
    assert "too few to judge" in rows["nurse x male"]
    assert "worse than usual care" in rows["18-29"]
    for cell in ("physician", "nurse", "community"):
        assert "too few" not in rows[cell] and "worse" not in rows[cell]
    assert "more than overall" in rows["community"]
    assert "by chance" in text  # many cells: some intervals miss by chance
    assert "complementary" in text or "next smallest" in text


def test_a_card_without_subgroups_does_not_describe_tables_it_lacks(evidence_card):
    text = _section(render_markdown(evidence_card), "Subgroups")
    assert "held-out part" not in text and "suppressed" not in text


def test_the_header_an_evidence_conversion_points_to_is_in_the_card_and_the_document(
    evidence_card,
):
    # Every converted effect read "SMD x 9.5 (assumed SD of EE, see the header)", and neither
    # the card nor docs/evidence.md had that header: it is a comment in the catalog file.
    from recommender.catalog import (
        ASSUMED_EE_SD,
        CONVERSION_NOTE,
        evidence_markdown,
        load_catalog,
    )

    conversions = [
        str(item.conversion)
        for arm in load_catalog().arms
        for item in arm.evidence
        if "see the header" in str(item.conversion)
    ]
    assert conversions and all(f"x {ASSUMED_EE_SD:g} " in c for c in conversions)
    for text in (
        _section(render_markdown(evidence_card), "Evidence behind each intervention"),
        evidence_markdown(load_catalog()).split("## Options the model ranks")[0],
    ):
        assert CONVERSION_NOTE in text
    assert f"by {ASSUMED_EE_SD:g} EE points" in CONVERSION_NOTE and "assumption" in CONVERSION_NOTE


def test_a_converted_interval_is_printed_as_the_catalog_gives_it(evidence_card):
    # "Taken as -2.4 EE points against usual care (-3.8 to -1)" for a catalog [-3.8, -1.0]
    text = _section(render_markdown(evidence_card), "Evidence behind each intervention")
    assert "(-3.8 to -1.0)" in text and "(-3.8 to -1)" not in text


def test_the_served_card_page_still_opens_with_its_simulated_data_warning(tmp_path):
    # README: "a warning first when the data were simulated"; the service put its "As served
    # now" line between the title and that warning.
    import dataclasses

    from recommender.card import write_card
    from recommender.service import load_serve_config
    from recommender.service._pages import model_card_page

    facts = {"model": {"name": "burnout-recommender", "version": "4"}}
    facts["training_data"] = {"source": "simulated"}
    write_card(facts, tmp_path / "cards" / "4")
    config = dataclasses.replace(load_serve_config(), models_dir=tmp_path)
    page = model_card_page(config, "4", None).body.decode()
    warning, serving = page.index('class="warning"'), page.index('id="serving-policy"')
    assert page.index("<h1") < warning < serving < page.index("<nav")


def test_the_oracle_table_says_why_its_figures_have_no_interval():
    facts = {
        "evaluation": {
            "alpha": 0.1,
            "n": 900,
            "oracle": {
                "columns": ["arm", "pehe", "bias", "coverage", "mean_width"],
                "rows": [["coaching", 2.341, -1.22, 0.713, 5.548]],
            },
        }
    }
    evaluation = _section(render_markdown(facts), "Evaluation")
    assert "no interval" in evaluation and "true effects" in evaluation


def test_card_tables_name_each_row_for_a_screen_reader(evidence_card):
    # "field | value" tables had no caption and no header cell per row: a screen reader read
    # "2026.12-2" without "Intervention catalog version".
    page = render_html(evidence_card)
    assert '<th scope="row">Intervention catalog version</th>' in page
    assert '<th scope="row">coaching</th>' in page  # the effects table, by arm
