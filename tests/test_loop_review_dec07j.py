"""A program lead's three survey cycles (review of 2026-12-07, session j): what the lead reads.

Each test failed before its fix:
- the card's lineage rows "Chosen for <outcome>" gave a carried arm nothing ("peer_group: ;");
- an outcome for a person erased since was refused as "no recommendation was served to this
  person id", which the lead knows to be false and cannot act on;
- the evidence-only model told programs that a model retrained from the log "can estimate"
  what to offer APPs "once their follow-up scores are in", whereas their follow-up scores, all
  under usual care, measure no intervention: the retrained model ranks interventions for APPs
  with figures extrapolated from the other roles (shown here on a retrained model);
- the gate's reasons gave figures without their direction (a policy value of +5.58 printed
  under "-5.58 EE points vs usual care"; "the difference there at 0.569 points");
- evaluate-policy said "personalizing adds to mindfulness for everyone it is offered to".
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_loop_carry import RARE, SETTINGS, TRUE, _log, _retrain, catalog, evidence  # noqa: F401
from test_loop_outcomes import _outcome, _served

from recommender.card import render_markdown
from recommender.card._facts import learner_choice
from recommender.catalog import load_catalog
from recommender.cohort import PROFILE_COLUMNS
from recommender.model import CARRIED_CHOICE, evidence_model, no_evidence_for_role
from recommender.service import (
    AuditLog,
    OutcomeRefused,
    erase_people,
    record_outcomes,
)

CATALOG = load_catalog()


# ------------------------------------------------------------ a log in which APPs got usual care
@pytest.fixture(scope="module")
def retrained(monkeypatch_module):
    """A model retrained (``learner: auto``) from a log where every APP was served usual care
    with probability 1, as under the evidence-only model, and peer groups too rarely to learn."""
    joined = _log(RARE)
    app = joined["role"].astype(str) == "app"
    assert app.sum() > 100
    joined.loc[app, ["intervention", "arm_taken"]] = "none"
    joined.loc[app, "propensity"] = 1.0
    joined.loc[app, "probabilities"] = json.dumps({"none": 1.0})
    joined.loc[app, "ee_followup"] = np.clip(joined.loc[app, "ee"] + TRUE["none"], 0, None)
    monkeypatch_module.setitem(SETTINGS, "learner", {"learner": "auto", "n_folds": 2})
    model, cohort, split, _ = _retrain(joined, CATALOG, evidence_model(CATALOG))
    return model, joined[app]


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_the_cards_learner_choice_names_a_carried_arm_instead_of_leaving_it_blank(retrained):
    model, _ = retrained
    choice = learner_choice(model, "auto")
    assert choice["outcomes"]["ee"]["peer_group"] == [CARRIED_CHOICE]
    assert all(choice["outcomes"]["ee"][arm] for arm in ("coaching", "mindfulness"))
    row = next(
        line
        for line in render_markdown({"model": {"learner_choice": choice}}).splitlines()
        if line.startswith("| Chosen for ee |")
    )
    assert f"peer_group: {CARRIED_CHOICE}" in row
    assert "peer_group: ;" not in row and not row.rstrip(" |").endswith(":")


def test_what_the_evidence_model_says_of_apps_is_what_a_retrained_model_does(retrained):
    model, apps = retrained
    effects = model.predict_effect(apps[list(PROFILE_COLUMNS)])
    # No APP was served coaching, yet the retrained model gives every APP a coaching figure:
    # it comes from the other roles.
    assert np.isfinite(effects["coaching"].to_numpy(dtype=float)).all()
    note = no_evidence_for_role("app")
    assert "can estimate it once their follow-up scores are in" not in note
    assert "extrapolated from the other roles" in note


# ------------------------------------------------------------ a follow-up file after an erasure
def test_an_outcome_of_a_person_erased_since_is_not_said_never_served():
    audit = AuditLog("sqlite://", salt="s")
    _served(audit, n=2)
    erase_people(audit, ["p-1"])
    rows = [_outcome(i) for i in range(2)]
    with pytest.raises(OutcomeRefused) as caught:
        record_outcomes(audit, rows, arms=CATALOG.arm_ids, source="api")
    (problem,) = caught.value.problems
    assert problem["field"] == "outcomes[1].person_id" and problem["value"] == "(hidden)"
    assert "no recommendation was served" not in problem["message"]
    assert "erased since" in problem["message"]
    # nothing of the submission was written: the person still served has no outcome yet
    record_outcomes(audit, rows[:1], arms=CATALOG.arm_ids, source="api")


# ------------------------------------------------------------ the gate's figures have a direction
def test_the_gates_reason_says_which_way_its_figures_point():
    from recommender.registry import gate_decision

    champion = np.array([1.0, 2.0, 1.5, 2.5] * 10)
    challenger = champion + np.array([0.5, 0.0, 0.0, 0.0] * 10)
    differs = np.array([True, False, False, False] * 10)
    # every row where they differ is one the log could not have served both arms on
    unmeasured = differs.copy()
    blind = gate_decision(
        challenger, champion, champion_version="1", differs=differs, unmeasured=unmeasured
    )
    assert not blind.passed
    assert "(challenger minus champion; above 0 favours the challenger) at 0.125 points" in (
        blind.reason
    )
    # beside "-5.58 EE points vs usual care" the train command prints the policy value 5.58:
    # the reason says what its sign means
    judged = gate_decision(challenger, champion, champion_version="1")
    assert judged.passed
    assert "policy value (points better than usual care per person; higher is better)" in (
        judged.reason
    )


# ------------------------------------------------------------ evaluate-policy's verdict, in words
def test_a_measurable_personalization_gain_is_said_as_beating_the_single_arm(
    monkeypatch, catalog, evidence
):
    import recommender.evaluation as evaluation
    from pipelines._from_log import off_policy_notes, off_policy_table
    from recommender.registry import estimate
    from test_loop_evaluate_policy import _valued

    from test_loop_carry import COMMON

    joined = _log(COMMON, n=2000, seed=8)
    frame, scores, change = _valued(joined, catalog, evidence)
    settings = dict(control="none", alpha=0.1, label="version 7")
    table = off_policy_table(evidence, frame, scores, change, **settings)
    # what the review's cycle-2 run printed for versions 6 and 7: a gain whose interval
    # lies above 0 (+1.75, 90% CI +0.05 to +3.45)
    measured = estimate(np.linspace(0.5, 3.0, 200))
    assert measured.lower > 0
    monkeypatch.setattr(
        evaluation, "personalization_gain", lambda *a, **k: (measured, "mindfulness", [])
    )
    (said,) = [
        n for n in off_policy_notes(evidence, frame, scores, table, **settings) if "personaliz" in n
    ]
    assert "personalizing adds to" not in said
    assert "personalizing measurably beats mindfulness for everyone it is offered to" in said


# ------------------------------------------------------------ a program's own columns
def test_a_follow_up_sheet_with_columns_of_its_own_is_refused_once_naming_them(tmp_path):
    from recommender.errors import InputError
    from recommender.service import read_outcome_file

    sheet = tmp_path / "followup.csv"
    rows = [
        f"p-{i},cardiology,spring,2026-06-01,coaching,20,7,38" for i in range(3000)
    ]  # the review's file: 2,089 rows, refused with 4,178 identical problems
    sheet.write_text(
        "person_id,department,survey_wave,measured_at,arm_taken,ee_followup,dp_followup,"
        "pa_followup\n" + "\n".join(rows) + "\n"
    )
    with pytest.raises(InputError) as caught:
        read_outcome_file(sheet)
    said = str(caught.value)
    assert "['department', 'survey_wave'] are not outcome fields" in said
    assert "nothing was imported" in said and "person_id, measured_at" in said


# ------------------------------------------------------------ --if-changed and a new survey cycle
def test_raising_the_survey_cycle_is_no_change_to_train_again_but_a_safety_rule_is(
    tmp_path, monkeypatch
):
    from types import SimpleNamespace

    from pipelines.train import _fingerprint, _settings
    from recommender.paths import config_path

    shipped = config_path("serve.yaml").read_text()
    assert "\n  cycle: 0\n" in shipped and "\nport: 3000\n" in shipped
    served = tmp_path / "serve.yaml"
    settings = _settings(None, None, {"source": "log"})
    cohort = SimpleNamespace(sha256="a" * 64)

    def fingerprint(text):
        served.write_text(text)
        monkeypatch.setenv("RECOMMENDER_SERVE_CONFIG", str(served))
        return _fingerprint(settings, cohort, {"numpy": "2"}, b"k" * 32)

    before = fingerprint(shipped)
    # step 5 of the README's loop, every cycle; and where and how the service runs
    assert fingerprint(shipped.replace("\n  cycle: 0\n", "\n  cycle: 1\n")) == before
    assert fingerprint(shipped.replace("\nport: 3000\n", "\nport: 3131\n")) == before
    assert fingerprint(shipped.replace("\nthreads: 16\n", "\nthreads: 4\n")) == before
    # what training reads (the card's referral rules, the exploration it describes) still counts
    assert fingerprint(shipped.replace("ee_at_least: 48}", "ee_at_least: 50}")) != before
    assert fingerprint(shipped.replace("max_cost: 0.03", "max_cost: 0.05")) != before
    assert fingerprint("port: [") != before
