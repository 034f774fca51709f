"""An arm never served to a role is not presented as learnt for that role (session 2026-12-07 j).

The evidence-only model serves every APP usual care, so a model retrained from its log has no
APP served any other arm; it still ranks coaching for APPs, with figures extrapolated from the
other roles. Before: the answer and the card said nothing of it. Now the training run records
the training rows per arm within each role, the answers name the arms the person's role had
fewer than ``min_cell`` rows of, and the card's subgroup section lists them.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from test_loop_carry import RARE, SETTINGS, TRUE, _log, _retrain

from pipelines._train_card import card_facts
from pipelines._train_config import config_from_mapping
from recommender.card import render_markdown
from recommender.catalog import load_catalog
from recommender.model import ARM_ROLE_KEY, estimate_basis, evidence_model
from recommender.registry import GateDecision, PolicyValue
from recommender.service import AuditLog, RecommendationEngine, load_serve_config
from service_fixtures import profile

CATALOG = load_catalog()
NOT_MEASURED = "Not measured on"


@pytest.fixture(scope="module")
def retrained():
    """Retrained from a log where every APP got usual care with probability 1 (as under the
    evidence-only model), and peer groups too rarely to learn (carried)."""
    joined = _log(RARE)
    # served anew from a draw of its own: _log draws the arms from the seed its staff were
    # drawn from, so that its roles and arms go together (no physician got mindfulness there)
    served = np.random.default_rng(11).choice(list(RARE), size=len(joined), p=list(RARE.values()))
    joined["intervention"] = joined["arm_taken"] = served
    joined["propensity"] = [RARE[a] for a in served]
    joined["ee_followup"] = np.clip(joined["ee"] + np.array([TRUE[a] for a in served]), 0, None)
    app = joined["role"].astype(str) == "app"
    joined.loc[app, ["intervention", "arm_taken"]] = "none"
    joined.loc[app, "propensity"] = 1.0
    joined.loc[app, "probabilities"] = json.dumps({"none": 1.0})
    joined.loc[app, "ee_followup"] = np.clip(joined.loc[app, "ee"] + TRUE["none"], 0, None)
    return _retrain(joined, CATALOG, evidence_model(CATALOG))


def _engine(model):
    return RecommendationEngine(
        model,
        "7",
        catalog=CATALOG,
        config=load_serve_config(),
        audit=AuditLog("sqlite://", salt="s"),
    )


def _answer(model, **changes):
    engine = _engine(model)
    return engine.recommend([engine.check_row(profile(**changes))], caller_role="program")[0]


def _apps(**changes):
    return dict(role="app", specialty="internal_medicine", years_in_practice=8.0, **changes)


def test_the_training_rows_per_arm_within_each_role_are_in_the_metadata(retrained):
    model, _, split, _ = retrained
    counts = model.metadata[ARM_ROLE_KEY]
    assert json.loads(json.dumps(counts)) == counts  # JSON-safe as MLflow stores it
    table = pd.crosstab(split.train["intervention"].astype(str), split.train["role"].astype(str))
    for arm in ("coaching", "mindfulness"):
        assert counts[arm]["app"] == 0
        for role in ("physician", "resident", "nurse"):
            assert counts[arm][role] == int(table.loc[arm, role]) >= 11
    assert "none" not in counts  # usual care: 0 by definition, nothing to extrapolate


def test_an_app_answer_says_the_recommended_arm_was_never_served_to_apps(retrained):
    model = retrained[0]
    answer = _answer(model, **_apps())
    ranked = [item["arm"] for item in answer["ranking"]]
    assert ranked[0] != "none"  # the retrained model does recommend an intervention to APPs
    note = answer["ranking_note"]
    name = CATALOG.arm(ranked[0]).name
    assert NOT_MEASURED in note
    assert "Not measured on advanced practice providers (APPs" in note
    assert "(0 rows; 11 needed)" in note
    assert "extrapolated from other roles, not measured" in note
    assert f"{name}: none of them in the data this model learnt from was served it" in note


def test_a_role_served_every_arm_enough_has_no_such_part(retrained):
    answer = _answer(retrained[0])  # a physician
    assert NOT_MEASURED not in json.dumps(answer)


def test_a_model_recorded_before_the_counts_answers_as_before(retrained):
    model = retrained[0]
    with_counts = _answer(model, **_apps())
    older = dict(model.metadata)
    del older[ARM_ROLE_KEY]
    saved = model.metadata
    model.metadata = older
    try:
        without = _answer(model, **_apps())
    finally:
        model.metadata = saved
    assert NOT_MEASURED not in json.dumps(without)
    arms = [item["arm"] for item in without["ranking"]]
    names = {a: a for a in arms}
    assert estimate_basis(older, arms, "app", names) is None  # no arm carried for APPs
    assert NOT_MEASURED in estimate_basis(model.metadata, arms, "app", names)
    # the rest of the answer is the same
    strip = {"request_id", "ranking_note", "answered_at", "timestamp"}
    assert {k: v for k, v in without.items() if k not in strip} == {
        k: v for k, v in with_counts.items() if k not in strip
    }


def test_the_card_names_the_arms_a_role_had_too_few_rows_of(retrained):
    model, cohort, split, evaluation = retrained
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
    assert facts["subgroups"]["thin_arms_by_role"] == {"app": ["coaching", "mindfulness"]}
    text = " ".join(render_markdown(facts).split())
    assert "Arms a role had fewer than 11 training rows of" in text
    assert "app: coaching, mindfulness." in text


def test_a_batch_answer_carries_it_too(retrained):
    engine = _engine(retrained[0])
    rows = [engine.check_row(profile(person_id=f"p-{k}", **_apps())) for k in range(3)]
    answers = engine.recommend(rows, caller_role="program", compact=True)
    assert all("(0 rows; 11 needed)" in answer["ranking_note"] for answer in answers)


def test_an_arm_the_catalog_renamed_keeps_its_counts_under_its_new_id(retrained):
    from recommender.model import RenamedArms

    view = RenamedArms(retrained[0], {"coaching": "coaching_v2"})
    assert view.metadata[ARM_ROLE_KEY]["coaching_v2"]["app"] == 0
    basis = estimate_basis(view.metadata, ["coaching_v2", "none"], "app", {})
    assert "advanced practice providers" in basis and "coaching_v2: none of them" in basis
