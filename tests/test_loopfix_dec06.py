"""Loose ends of the learning loop: an off-policy figure not given reads as such (with the rows
the log could not measure beside every figure), /outcomes logs one line tying its rows to the
request, and the benchmark's Open Bandit Pipeline figures value the rows the product values."""

from __future__ import annotations

import logging
import math
import re
import sys
import types

import numpy as np
import pytest
from service_fixtures import (  # noqa: F401  (fixtures)
    asgi_client,
    auth,
    linear_model,
    outcome,
    profile,
    service_home,
)
from test_loop_carry import COMMON, SETTINGS, _log, catalog, evidence  # noqa: F401 (fixtures)

from pipelines._train_config import config_from_mapping
from pipelines.train import policy_on_log, policy_scores_on_log


# -- evaluate-policy: a figure not given, and the unmeasured rows ---------------------------------
def _nan_row(estimator: str) -> dict:
    nan = float("nan")
    return {
        "policy": "champion (version 1)",
        "estimator": estimator,
        "estimate": nan,
        "lower": nan,
        "upper": nan,
        "rows": 400,
        "effective_rows": 12.0,
        "unmeasured_rows": 37,
    }


def test_the_plain_table_says_not_measurable_and_counts_the_unmeasured_rows(monkeypatch, capsys):
    import pipelines.train
    from recommender.cli import main

    given = {**_nan_row("DR"), "estimate": -1.25, "lower": -2.0, "upper": -0.5}
    table = {
        "rows": 400,
        "logged_rows": 400,
        "notes": ["champion (version 1): IPS and SNIPS not measurable: the reason"],
        "values": [given, _nan_row("IPS"), _nan_row("SNIPS")],
    }
    monkeypatch.setattr(pipelines.train, "evaluate_policies_on_log", lambda *a, **k: table)
    assert main(["evaluate-policy", "--from-log"]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out.lower()
    header = next(line for line in out.splitlines() if line.startswith("policy"))
    assert header.rstrip().endswith("unmeasured rows")
    rows = [line for line in out.splitlines() if line.startswith("champion (version 1)  ")]
    assert len(rows) == 3
    assert "-1.250" in rows[0] and rows[0].rstrip().endswith("37")
    for line in rows[1:]:
        assert "not measurable" in line and line.rstrip().endswith("37")
    # the reason once, in the notes
    assert out.count("not measurable: the reason") == 1


def _valued_without(catalog, evidence):  # noqa: F811
    """A log valued as evaluate-policy does, less every row served an arm the policy picks."""
    joined = _log(COMMON, n=2000, seed=8)
    frame, scores, change, _ = policy_scores_on_log(joined, config_from_mapping(SETTINGS), catalog)
    arms, _ = policy_on_log(evidence, frame, scores, control="none")
    picked = [a for a in dict.fromkeys(arms) if a != "none"]
    assert picked, "the policy should pick some arm other than usual care"
    gone = picked[0]
    kept = (frame["intervention"].astype(str) != gone).to_numpy()
    frame = frame[kept].reset_index(drop=True)
    return frame, scores[kept].reset_index(drop=True), change[kept], gone


def test_estimates_not_given_are_explained_once_and_unmeasured_rows_are_counted(
    catalog,  # noqa: F811
    evidence,  # noqa: F811
):
    from pipelines._from_log import OFF_POLICY_COLUMNS, off_policy_notes, off_policy_table
    from recommender.card import render_markdown

    frame, scores, change, gone = _valued_without(catalog, evidence)
    settings = dict(control="none", alpha=0.1, label="champion (version 1)")
    table = off_policy_table(evidence, frame, scores, change, **settings)
    assert len(OFF_POLICY_COLUMNS) == 8 and all(len(row) == 8 for row in table)
    by = {row[1]: row for row in table}
    assert math.isfinite(by["DR"][2])
    assert math.isnan(by["IPS"][2]) and math.isnan(by["SNIPS"][2])
    arms, _ = policy_on_log(evidence, frame, scores, control="none")
    # at least every row where it picks the arm never served
    assert {row[7] for row in table} == {by["DR"][7]}
    assert by["DR"][7] >= int((arms == gone).sum()) > 0
    notes = off_policy_notes(evidence, frame, scores, table, **settings)
    said = [n for n in notes if "not measurable" in n]
    assert said == [
        f"champion (version 1): IPS and SNIPS not measurable: no logged row was served {gone}, "
        "which it needs against usual care, and weights know nothing of an arm never served"
    ]
    # the card's off-policy table has the column, and a figure not given is no "nan"
    loop = {"n_rows": len(frame), "off_policy": {"columns": OFF_POLICY_COLUMNS, "rows": table}}
    loop["off_policy"]["notes"] = notes
    card = render_markdown({"training_data": {"loop": loop}})
    assert "| unmeasured rows |" in card and "nan" not in card.lower()
    assert f"IPS and SNIPS not measurable: no logged row was served {gone}" in card


def test_every_estimate_of_a_fully_logged_policy_is_given_and_no_note_says_otherwise(
    catalog,  # noqa: F811
    evidence,  # noqa: F811
):
    from pipelines._from_log import off_policy_notes, off_policy_table

    joined = _log(COMMON, n=2000, seed=8)
    frame, scores, change, _ = policy_scores_on_log(joined, config_from_mapping(SETTINGS), catalog)
    settings = dict(control="none", alpha=0.1, label="version 2")
    table = off_policy_table(evidence, frame, scores, change, **settings)
    assert all(math.isfinite(row[2]) and row[7] == 0 for row in table)
    notes = off_policy_notes(evidence, frame, scores, table, **settings)
    assert not any("not measurable" in n for n in notes)


# -- POST /outcomes: one log line per request ----------------------------------------------------
def _lines(caplog, request_id: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if request_id in r.getMessage()]


def test_outcomes_log_one_line_with_counts_and_the_request_id_and_nothing_of_the_person(
    asgi_client,  # noqa: F811
    caplog,
):
    person = "person-who-must-not-show"
    served = asgi_client.post("/recommend", json=profile(person_id=person), headers=auth("program"))
    assert served.status_code == 200, served.text
    body = {"outcomes": [outcome(person, ee_followup=47, dp_followup=29, pa_followup=3)]}
    with caplog.at_level(logging.INFO, logger="recommender.service"):
        recorded = asgi_client.post("/outcomes", json=body, headers=auth("program"))
        again = asgi_client.post("/outcomes", json=body, headers=auth("program"))
    assert recorded.status_code == 200, recorded.text
    assert again.status_code == 409, again.text
    first = recorded.headers["x-bentoml-request-id"]
    second = again.headers["x-bentoml-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", first) and first != second
    assert _lines(caplog, first) == [
        "outcomes recorded in the audit log: 1 recorded, 0 corrected, 0 already recorded, "
        f"of 1 rows; request {first}"
    ]
    assert _lines(caplog, second) == [
        "outcomes refused (409), nothing recorded: 1 of 1 rows refused, 1 of them as "
        f"duplicates; request {second}"
    ]
    outcome_lines = [r for r in caplog.records if r.getMessage().startswith("outcomes ")]
    assert len(outcome_lines) == 2 and all(r.levelno == logging.INFO for r in outcome_lines)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert person not in logged and "ee_followup" not in logged
    for score in ("47", "29"):  # as a number of its own: request ids are random hex
        assert not re.search(rf"\b{score}\b", logged)


def test_a_refused_submission_counts_the_rows_it_names(asgi_client, caplog):  # noqa: F811
    body = {
        "outcomes": [
            outcome("never-served-1"),
            outcome("never-served-2", arm_taken="yoga"),
            outcome("never-served-3"),
        ]
    }
    with caplog.at_level(logging.INFO, logger="recommender.service"):
        refused = asgi_client.post("/outcomes", json=body, headers=auth("program"))
    assert refused.status_code == 422, refused.text
    request_id = refused.headers["x-bentoml-request-id"]
    assert _lines(caplog, request_id) == [
        "outcomes refused (422), nothing recorded: 3 of 3 rows refused, 0 of them as "
        f"duplicates; request {request_id}"
    ]


# -- the benchmark's obp comparison: the same rows and probabilities ---------------------------
def _fake_obp(monkeypatch) -> None:
    """Open Bandit Pipeline's two estimators by their published formulas (obp itself is not a
    dependency): IPS ``mean(w r)``, SNIPS ``sum(w r) / sum(w)``, ``w = pi(a|x) / pscore``."""

    class _Weighted:
        def _weights(self, action, pscore, action_dist):
            return action_dist[np.arange(len(action)), action, 0] / pscore

    class InverseProbabilityWeighting(_Weighted):
        def estimate_policy_value(self, *, reward, action, pscore, action_dist):
            return float(np.mean(self._weights(action, pscore, action_dist) * reward))

    class SelfNormalizedInverseProbabilityWeighting(_Weighted):
        def estimate_policy_value(self, *, reward, action, pscore, action_dist):
            w = self._weights(action, pscore, action_dist)
            return float((w * reward).sum() / w.sum())

    ope = types.ModuleType("obp.ope")
    ope.InverseProbabilityWeighting = InverseProbabilityWeighting
    ope.SelfNormalizedInverseProbabilityWeighting = SelfNormalizedInverseProbabilityWeighting
    package = types.ModuleType("obp")
    package.ope = ope
    monkeypatch.setitem(sys.modules, "obp", package)
    monkeypatch.setitem(sys.modules, "obp.ope", ope)


def test_the_obp_comparison_values_the_rows_and_probabilities_the_product_keeps(
    monkeypatch,
    catalog,  # noqa: F811
):
    from bench.rollout_offpolicy import off_policy_on_cycle

    _fake_obp(monkeypatch)
    # peer_group served to about 6 of 1,000: too rarely to score, so its rows are left out
    # and its probability taken out of the kept rows'
    shares = {"none": 0.4, "coaching": 0.3, "mindfulness": 0.294, "peer_group": 0.006}
    log_cycle = _log(shares, n=1000, seed=4)
    cohort = log_cycle.copy()
    for arm in catalog.treatment_arms:
        cohort[f"true_effect_{arm}"] = -1.0
    best = np.where(np.arange(len(log_cycle)) % 2 == 0, "coaching", "none").astype(object)
    values, _, kept_share, _, compared = off_policy_on_cycle(
        log_cycle, cohort, best, catalog, seed=0
    )
    assert values is not None and 0.95 < kept_share < 1.0
    # like with like: the same rows and probabilities give the same IPS and SNIPS
    assert compared["obp_ips"] == pytest.approx(values["ips"].estimate, abs=1e-9)
    assert compared["obp_snips"] == pytest.approx(values["snips"].estimate, abs=1e-9)
