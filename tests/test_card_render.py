"""The model card rendered from plain facts: sections, suppression, embedded plots, rules."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
from test_model_fakes import fake_model, profiles

from recommender.card import (
    SECTIONS,
    evaluation_facts,
    policy_summary,
    read_card,
    recommendation_mix,
    render_html,
    render_markdown,
    section_ids,
    subgroup_facts,
    write_card,
)


def report_and_profiles(n=1500, seed=0):
    """A real EvaluationReport from the fake model's effects and synthetic DR scores."""
    from recommender.evaluation import evaluate_effects, subgroup_frame

    rng = np.random.default_rng(seed)
    rows = profiles(n, seed=seed)
    # A rare category, so that some role x gender cells fall under the 11-person floor.
    rows["gender"] = np.where(
        np.arange(n) < 8, "nonbinary", np.where(np.arange(n) % 2 == 0, "female", "male")
    )
    model = fake_model()
    effects = model.predict_effect(rows)
    scores = pd.DataFrame({"none": rng.normal(0, 4, n)})
    for arm in effects.columns:
        scores[arm] = scores["none"] + effects[arm].to_numpy() + rng.normal(0, 4, n)
    report = evaluate_effects(effects, scores, groups=subgroup_frame(rows), alpha=0.1)
    return report, rows, model


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    report, rows, model = report_and_profiles()
    recommended = model.recommend(model.predict_effect(rows)).to_numpy()
    folder = tmp_path_factory.mktemp("plots")
    plots = {p.stem: p.read_bytes() for p in report.save_plots(folder)}
    facts = {
        "model": {
            "name": "burnout-recommender",
            "version": "3",
            "run_id": "abc123",
            "git_commit": "deadbeef",
            "data_sha256": "f" * 64,
            "catalog_version": "test-1",
            "learners": {"ee": "dr"},
            "gate": {"passed": True, "reason": "first version"},
        },
        "training_data": {"source": "simulated", "design": "randomized", "n_rows": 5000},
        "evaluation": evaluation_facts(report),
        "subgroups": subgroup_facts(report),
        "recommendation_mix": recommendation_mix(recommended, model.arms),
        "policy_summary": policy_summary(model.feature_frame(rows), recommended),
        "evidence": [
            {
                "arm": "coaching",
                "name": "Professional coaching",
                "items": [
                    {
                        "citation": "Dyrbye 2019",
                        "effect": "-5 points",
                        "population": "physicians",
                        "outcome": "EE",
                    }
                ],
            }
        ],
    }
    out = tmp_path_factory.mktemp("card")
    paths = write_card(facts, out, plots=plots)
    return facts, plots, paths, report


def test_every_section_is_in_html_and_markdown(card):
    _, _, paths, _ = card
    html = paths["html"].read_text()
    markdown = paths["markdown"].read_text()
    for section_id, title in SECTIONS:
        assert f'<section id="{section_id}">' in html
        assert f"## {title}" in markdown
    assert section_ids()[0] == "model-details" and section_ids()[-1] == "reporting"


def test_html_is_self_contained_with_embedded_pngs(card):
    _, plots, paths, _ = card
    html = paths["html"].read_text()
    assert not re.search(r'src="(?!data:)', html), "an image or script points outside the page"
    assert "<link" not in html and "<script" not in html
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(embedded) == len(plots) >= 3
    assert all(base64.b64decode(e)[:8] == b"\x89PNG\r\n\x1a\n" for e in embedded)


def test_lineage_and_honesty_statement_are_shown(card):
    _, _, paths, report = card
    markdown = paths["markdown"].read_text()
    for fact in ("abc123", "deadbeef", "f" * 64, "test-1"):
        assert fact in markdown
    assert report.statement in markdown
    assert "Diagnosis" in markdown and "discipline" in markdown
    # auditors read what the per-person intervals were measured to do off our own simulator
    assert "calibrated, not guaranteed" in markdown and "docs/benchmarks.md" in markdown


def test_small_cells_are_suppressed_not_shown(card):
    facts, _, _, _ = card
    table = facts["subgroups"]["table"]
    n_column = table["columns"].index("n")
    sizes = [row[n_column] for row in table["rows"]]
    assert "suppressed" in sizes, "the fixture should contain small intersectional cells"
    assert all(s == "suppressed" or s >= 11 for s in sizes)
    for row in table["rows"]:
        if row[n_column] == "suppressed":
            assert set(row[2:]) == {"suppressed"}


def test_policy_summary_rules_and_fidelity():
    rows = profiles(800, seed=3)
    model = fake_model()
    recommended = model.recommend(model.predict_effect(rows)).to_numpy()
    summary = policy_summary(model.feature_frame(rows), recommended, max_depth=3)
    # The fake's recommendation depends on ee alone, in two cut points: a depth-3 tree
    # recovers it almost exactly, and says so in terms of ee.
    assert summary["fidelity"] > 0.97
    assert "ee <=" in summary["rules"]


def test_json_round_trip_and_rerender_are_identical(card, tmp_path):
    facts, _, paths, _ = card
    loaded, images = read_card(paths["json"].parent)
    assert json.loads(paths["json"].read_text()) == loaded
    again = write_card(loaded, tmp_path, plots=images)
    assert again["html"].read_text() == paths["html"].read_text()
    assert again["markdown"].read_text() == paths["markdown"].read_text()


def test_missing_facts_render_as_not_available():
    html = render_html({})
    markdown = render_markdown({})
    assert all(f'id="{sid}"' in html for sid in section_ids())
    assert "not available" in markdown


def test_text_is_escaped_in_html():
    html = render_html({"model": {"name": "<script>alert(1)</script>"}})
    assert "<script>alert" not in html and "&lt;script&gt;" in html


# -- layout a reader sees first (issue 10, item 8) ----------------------------------------------


def test_the_card_opens_with_its_data_provenance_warning(card):
    _, _, paths, _ = card
    html = paths["html"].read_text()
    markdown = paths["markdown"].read_text()
    warning = html.index("must not be used to advise real clinicians")
    assert warning < html.index("<nav") < html.index('<section id="model-details">')
    assert markdown.index("SIMULATED") < markdown.index("## ")
    assert "SIMULATED" not in render_markdown({"training_data": {"source": "program log"}})


def test_subgroup_tables_fit_a_page(card):
    _, _, paths, _ = card
    html = paths["html"].read_text()
    section = html[html.index('<section id="subgroups">') :]
    section = section[: section.index("</section>")]
    tables = re.findall(r"<table>.*?</table>", section, re.DOTALL)
    assert len(tables) == 2
    for table in tables:
        header = re.search(r"<thead>(.*?)</thead>", table).group(1)
        assert header.count("<th") <= 9  # the one 14-column table did not fit 60rem
        assert not re.search(r"<td>0\.\d{3}</td>", table)  # shares as whole percentages
    assert "suppressed" in section and "%" in section


def test_policy_rules_read_as_conditions_not_one_hot_thresholds():
    rows = profiles(1500, seed=5)
    recommended = np.where(rows["role"].astype(str) == "nurse", "mindfulness", "coaching")
    rules = policy_summary(fake_model().feature_frame(rows), recommended, max_depth=2)["rules"]
    assert "role is nurse" in rules and "role is not nurse" in rules
    assert "<= 0.5" not in rules and "=nurse" not in rules


def test_a_calibration_plot_without_a_slope_is_not_titled_nan(card):
    import matplotlib.pyplot as plt

    from recommender.evaluation._plots import calibration_figure

    _, _, _, report = card
    slopes = report.calibration_slopes.copy()
    slopes.iloc[0, slopes.columns.get_loc("estimate")] = float("nan")
    figure = calibration_figure(
        type("Report", (), {"calibration_slopes": slopes, "calibration": report.calibration})()
    )
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    plt.close(figure)
    assert titles and not any("nan" in t for t in titles)
    assert "slope not estimable" in titles[0]
