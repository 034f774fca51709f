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
