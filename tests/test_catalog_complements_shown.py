"""What the model does not rank, and the certainty of what it does: shown in every answer (once
per batch), every plan, the allocate CLI output and the model card."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.allocate import CohortPlan
from recommender.card import complement_facts, evidence_facts, render_html, render_markdown
from recommender.catalog import load_catalog
from recommender.explain import COMPLEMENT_NOTE
from recommender.service import AuditLog, RecommendationEngine, load_serve_config
from service_fixtures import (  # noqa: F401  (fixtures)
    LinearModel,
    asgi_client,
    auth,
    linear_model,
    profile,
    service_home,
)

COMPLEMENTS = [
    "schwartz_rounds",
    "mentoring",
    "workload_and_scheduling",
    "ehr_burden",
    "leadership",
]


@pytest.fixture
def engine():
    return RecommendationEngine(
        LinearModel(),
        "5",
        catalog=load_catalog(),
        config=load_serve_config(),
        audit=AuditLog("sqlite://", salt="s"),
    )


def _ids(items):
    return [item["id"] for item in items]


def test_every_answer_lists_the_complements_and_evidence_shows_certainty(engine):
    answer = engine.recommend([engine.check_row(profile())], caller_role="program")[0]
    assert _ids(answer["complements"]) == COMPLEMENTS
    first = answer["complements"][0]
    assert first["ranked"] is False and first["note"] == COMPLEMENT_NOTE
    assert all(e["certainty"] for c in answer["complements"] for e in c["evidence"])
    for item in answer["ranking"]:
        for record in item["evidence"]:
            assert record["certainty"] and record["design"] and "grade" in record
    crisis = engine.recommend([engine.check_row(profile(crisis_risk=True))], caller_role="program")[
        0
    ]
    assert _ids(crisis["complements"]) == COMPLEMENTS


def test_a_batch_gives_the_complements_once(asgi_client):
    rows = [profile(person_id=f"p{i}") for i in range(3)]
    body = asgi_client.post(
        "/recommend_batch", json={"profiles": rows}, headers=auth("program")
    ).json()
    assert _ids(body["complements"]) == COMPLEMENTS
    assert all(result["complements"] == [] for result in body["results"])
    evidence = body["arms"]["coaching"]["evidence"]
    assert evidence and all(record["certainty"] for record in evidence)


def test_a_plan_lists_the_complements(asgi_client):
    body = asgi_client.post(
        "/allocate", json={"profiles": [profile(person_id="a")]}, headers=auth("program")
    ).json()
    assert _ids(body["complements"]) == COMPLEMENTS


def test_allocate_cli_output_lists_the_complements():
    class Allocation:  # only what summary_lines reads
        budget, status, total_cost, expected_points_avoided = None, "optimal", 0.0, 0.0
        floors, fairness, notes = {}, None, ()
        summary = pd.DataFrame(
            columns=["people", "groups", "capacity", "cost", "expected_points_avoided"]
        )

    plan = CohortPlan(
        path="plan.csv",
        rows=0,
        model_uri="models:/m/1",
        version="1",
        allocation=Allocation(),
        referrals=0,
        complements=load_catalog().complements,
    )
    lines = plan.summary_lines()
    assert any(COMPLEMENT_NOTE in line for line in lines)
    for complement in load_catalog().complements:
        line = next(line for line in lines if line.strip().startswith(complement.name))
        assert complement.evidence[0].certainty in line


def test_the_card_shows_certainty_and_the_complements():
    catalog = load_catalog()
    facts = {"evidence": evidence_facts(catalog), "complements": complement_facts(catalog)}
    markdown = render_markdown(facts)
    assert "What individual interventions do not replace" in markdown
    assert "Schwartz Rounds" in markdown and COMPLEMENT_NOTE in markdown
    dyrbye = catalog.arm("coaching").evidence[0]
    assert f"certainty: {dyrbye.certainty.rstrip('.')}]" in markdown
    assert "Taken as -6.7 EE points against usual care (-10.1 to -3.3)" in markdown
    html = render_html(facts)
    assert "What individual interventions do not replace" in html
    assert "GRADE" in html
