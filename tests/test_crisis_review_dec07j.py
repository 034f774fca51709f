"""Holes found by trying to make the product withhold crisis resources (review of 2026-12-07).

1. A cohort file whose crisis flag's column is spelled as a spreadsheet writes it (``Crisis
   Risk``, ``crisis_risk `` with a trailing space) was read as an unknown column and ignored:
   `score`, `allocate` and `batch-score` ranked its flagged people (``routine``, an arm), where
   the service reads such a key as the flag. The file is now refused naming the column, and its
   flagged people get their resources in ``<out>.crisis.csv``, as for every refusal. A header
   giving ``crisis_risk`` twice stopped them on a traceback with no crisis file; it is refused
   the same way.
2. A crisis request to the service waited for an answering thread behind ordinary requests
   that all waited for a locked (or hung) audit store: 15 s and more, or the request timeout's
   bare 504, where its answer is promised within 2 s. It now has a lane of its own.
3. A batch or plan entry whose flag was inside one of its fields (``{"details": {"crisis_risk":
   true}}``, a wrapped profile) was an error entry of a 200 (a batch) or refused the plan,
   without resources, where /recommend's body so sent gets them. It gets the crisis answer.
"""

from __future__ import annotations

import pandas as pd
import pytest
from service_fixtures import (  # noqa: F401  (fixtures)
    PROFILE,
    asgi_client,
    auth,
    linear_model,
    profile,
    service_home,
)
from spark_fixtures import spark  # noqa: F401 - the process's one local Spark session

from recommender.cli import main
from recommender.cohort import is_crisis_name, validate_cohort
from recommender.errors import InputError
from recommender.policy import crisis_flags

ANSWERED = "flagged for crisis risk need the crisis resources now: they are in"
MISNAMED = ["Crisis Risk", "crisis_risk ", "CrisisRisk", "crisis-risk"]


@pytest.fixture
def misnamed_file(tmp_path, monkeypatch, request):
    """Two people, the first flagged under a crisis column spelled otherwise; no model."""
    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path / "home"))  # no model: never reached
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = tmp_path / "cohort.csv"
    pd.DataFrame(
        {"person_id": ["p1", "p2"], "role": ["physician", "nurse"], request.param: ["yes", "no"]}
    ).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", MISNAMED)
def test_a_crisis_column_spelled_otherwise_is_read_as_the_flag_and_refused_by_name(name):
    frame = pd.DataFrame({name: ["yes", "no", "maybe"]})
    assert is_crisis_name(name)
    assert crisis_flags(frame, strict=False).tolist() == [True, False, True]
    with pytest.raises(InputError, match=f"{name!r} name the crisis flag") as refused:
        crisis_flags(frame, where="cohort.csv")
    assert "rename it" in str(refused.value)
    report = validate_cohort(frame.assign(person_id=["a", "b", "c"]), training=False)
    (check,) = [c for c in report.checks if c.rule == "crisis_column_misnamed"]
    assert check.severity == "error" and check.column == name and not report.ok


def test_the_crisis_column_itself_and_other_names_are_read_as_before():
    assert crisis_flags(pd.DataFrame({"crisis_risk": ["yes", "no"]})).tolist() == [True, False]
    for name in ("not_crisis_risk", "crisis", "risk"):
        assert not is_crisis_name(name)
        assert not crisis_flags(pd.DataFrame({name: ["yes"]})).any()
    # both spellings: refused, either one's flag counts
    both = pd.DataFrame({"crisis_risk": ["no", "no"], "Crisis Risk": ["yes", "no"]})
    assert crisis_flags(both, strict=False).tolist() == [True, False]
    with pytest.raises(InputError, match="'Crisis Risk' name the crisis flag"):
        crisis_flags(both)


@pytest.mark.parametrize("misnamed_file", MISNAMED, indirect=True)
@pytest.mark.parametrize("command", ["score", "allocate"])
def test_score_and_allocate_refuse_a_misnamed_crisis_column_and_answer_its_rows(
    misnamed_file, tmp_path, capsys, command
):
    out = tmp_path / "out.csv"
    assert main([command, "--data", str(misnamed_file), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "name the crisis flag" in err and "Traceback" not in err
    crisis_file = tmp_path / "out.crisis.csv"
    assert f"1 profile(s) {ANSWERED} {crisis_file}" in err
    rows = pd.read_csv(crisis_file)
    assert rows["person_id"].tolist() == ["p1"]
    assert rows["referral"].str.contains("Physician Support Line").all()
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("misnamed_file", ["Crisis Risk"], indirect=True)
def test_batch_score_refuses_a_misnamed_crisis_column_and_answers_its_rows(
    spark,  # noqa: F811
    misnamed_file,
    tmp_path,
    capsys,
):
    out = tmp_path / "scored.parquet"
    assert main(["batch-score", "--data", str(misnamed_file), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    crisis_file = tmp_path / "scored.crisis.csv"
    assert f"1 profile(s) {ANSWERED} {crisis_file}" in err
    assert pd.read_csv(crisis_file)["person_id"].tolist() == ["p1"]
    assert not out.exists()


# -- 1b. a crisis_risk column given twice --------------------------------------------------------


@pytest.fixture
def twice_file(tmp_path, monkeypatch):
    """A header giving crisis_risk twice, the person flagged in the second: pandas' frame[name]
    is then a table, and score and allocate stopped on a traceback (AttributeError) with no
    crisis file; batch-score on Spark's ambiguous reference, with none either."""
    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path / "home"))  # no model: never reached
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = tmp_path / "cohort.csv"
    path.write_text("person_id,role,crisis_risk,crisis_risk\np1,nurse,no,yes\np2,app,no,no\n")
    return path


@pytest.mark.parametrize("command", ["score", "allocate"])
def test_a_crisis_column_given_twice_is_refused_and_its_rows_answered(
    twice_file, tmp_path, capsys, command
):
    assert main([command, "--data", str(twice_file), "--out", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert "'crisis_risk' is given 2 times" in err and "Traceback" not in err
    assert f"1 profile(s) {ANSWERED}" in err
    assert pd.read_csv(tmp_path / "out.crisis.csv")["person_id"].tolist() == ["p1"]


@pytest.mark.slow
def test_batch_score_answers_the_rows_of_a_crisis_column_given_twice(
    spark,  # noqa: F811
    twice_file,
    tmp_path,
    capsys,
):
    out = tmp_path / "scored.parquet"
    assert main(["batch-score", "--data", str(twice_file), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"1 profile(s) {ANSWERED}" in err and "AMBIGUOUS" not in err
    assert pd.read_csv(tmp_path / "scored.crisis.csv")["person_id"].tolist() == ["p1"]


# -- 2. the service: a crisis answer does not queue behind ordinary requests ------------------


@pytest.mark.parametrize("ordinary_flag", [None, False], ids=["unflagged", "flag-false"])
def test_a_crisis_answer_is_not_queued_behind_requests_waiting_for_a_locked_store(
    asgi_client, service_home, monkeypatch, ordinary_flag
):
    """Every answering thread held by an ordinary request waiting for the store (another
    process holds it locked; a database server that hangs holds them up to the request
    timeout): a crisis request waited for one to be free (15 s and more, or the timeout's bare
    504), where its answer is promised within 2 s whatever the store does. Ordinary requests
    that say ``"crisis_risk": false`` (as a program may with every profile) stay out of the
    crisis lane too."""
    import sqlite3
    import threading
    import time

    from recommender.service import _crisis
    from recommender.service.service import Recommender

    monkeypatch.setattr(_crisis, "CRISIS_RECORD_WAIT", 0.2)
    assert asgi_client.post("/recommend", json=PROFILE, headers=auth("program")).status_code == 200
    locker = sqlite3.connect(service_home / "audit.db", isolation_level=None, timeout=1)
    locker.execute("BEGIN EXCLUSIVE")
    ordinary = [
        threading.Thread(
            target=asgi_client.post,
            args=("/recommend",),
            kwargs={
                "json": profile(person_id=f"o-{i}")
                | ({} if ordinary_flag is None else {"crisis_risk": ordinary_flag}),
                "headers": auth("program"),
            },
        )
        for i in range(Recommender.config["threads"] + 2)
    ]
    crisis = {}

    def ask():
        crisis["answer"] = asgi_client.post(
            "/recommend", json={"person_id": "c-9", "crisis_risk": True}, headers=auth("program")
        )

    asking = threading.Thread(target=ask)
    try:
        for thread in ordinary:
            thread.start()
        time.sleep(1.5)  # every answering thread now waits for the store
        started = time.monotonic()
        asking.start()
        asking.join(8)
        waited = time.monotonic() - started
        answered = "answer" in crisis  # while the store is still locked
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        asking.join()
        for thread in ordinary:
            thread.join()
    assert answered, f"no crisis answer in {waited:.1f} s while the store was locked"
    answer = crisis["answer"]
    assert answer.status_code == 200 and answer.json()["safety"]["resources"]
    assert answer.json()["safety"]["recorded_in"].startswith("service log (fallback")


# -- 3. a batch or plan entry whose flag is nested inside one of its fields --------------------


def _names(answer):
    return [r["name"] for r in answer["safety"]["resources"]]


@pytest.mark.parametrize(
    "details",
    [{"crisis_risk": True}, [{"Crisis Risk": "yes"}], '{"crisis_risk": "true"}'],
    ids=["object", "list", "json-text"],
)
def test_a_batch_entry_flagged_inside_a_field_gets_crisis_resources(asgi_client, details):
    """The flag inside a field of its entry (a client that wraps the profile): the entry was an
    error entry of a 200 with no resources, where /recommend's body so sent gets them."""
    flagged = {"person_id": "n-1", "role": "resident", "details": details}
    body = {"profiles": [profile(person_id="ok-1"), flagged]}
    response = asgi_client.post("/recommend_batch", json=body, headers=auth("program"))
    assert response.status_code == 200, response.text
    batch = response.json()
    assert batch["result_index"] == [0, 1] and batch["errors"] == []
    answer = batch["results"][1]
    assert answer["safety"]["level"] == "crisis" and answer["recommended"] is None
    assert "Physician Support Line (US)" in _names(answer)  # the entry's role's resources
    assert answer["ignored"][0]["field"] == "profiles[1]"
    assert "nested in this entry" in answer["ignored"][0]["message"]
    assert batch["results"][0]["recommended"] is not None


def test_an_entry_with_a_nested_flag_that_reads_false_is_still_an_error(asgi_client):
    body = {"profiles": [{**PROFILE, "details": {"crisis_risk": False, "note": "crisis"}}]}
    response = asgi_client.post("/recommend_batch", json=body, headers=auth("program"))
    assert response.status_code == 200 and response.json()["results"] == []
    assert response.json()["errors"][0]["index"] == 0


def test_a_plan_entry_flagged_inside_a_field_gets_no_arm_and_the_resources(asgi_client):
    flagged = {"person_id": "n-2", "role": "nurse", "meta": {"crisis_risk": 1}}
    body = {"profiles": [profile(person_id="ok-2"), flagged]}
    response = asgi_client.post("/allocate", json=body, headers=auth("program"))
    assert response.status_code == 200, response.text
    line = response.json()["assignments"][1]
    assert line["safety"]["level"] == "crisis" and line["safety"]["resources"]
    assert "Physician Support Line (US)" not in _names(line)


# -- 4. serve.yaml: referrals for some roles but not all ------------------------------------------


def test_referrals_that_leave_out_a_role_are_refused_naming_it():
    """An edit that dropped a role's referral was accepted: that role's severe profiles got the
    notice alone while the others were told where their role is referred."""
    from recommender.policy import SafetyRules
    from recommender.service._config import load_serve_config

    referral = {"to": "the EAP", "confidentiality": "confidential"}
    safety = {
        "referral_rules": [{"ee_at_least": 48}],
        "referral_notice": "see someone",
        "crisis_notice": "call now",
        "crisis_resources": [{"name": "988 Lifeline", "contact": "988"}],
    }
    partial = {role: referral for role in ("physician", "resident", "app")}
    with pytest.raises(InputError, match="no referral for nurse; accepted: one for every role"):
        SafetyRules.from_config({**safety, "referrals": partial})
    every = {**partial, "nurse": referral}
    assert set(SafetyRules.from_config({**safety, "referrals": every}).referrals) == set(every)
    assert SafetyRules.from_config(safety).referrals == {}  # none: the notice alone
    assert set(load_serve_config().safety.referrals) == set(every)


@pytest.mark.parametrize(
    ("body", "crisis_lane"),
    [
        (b'{"person_id": "a", "crisis_risk": false}', False),
        (b'{"person_id": "a", "crisis_risk" : "No"}', False),
        (
            b'{"profiles": [{"crisis_risk": false}, {"crisis_risk": null}, {"crisis_risk": 0}]}',
            False,
        ),
        (b'{"person_id": "a"}', False),
        (b'{"person_id": "a", "crisis_risk": true}', True),
        (b'{"profiles": [{"crisis_risk": false}, {"crisis_risk": "yes"}]}', True),
        (b'{"crisis_risk": 1.0}', True),
        (b'{"crisis_risk": 0.5}', True),
        (b'{"crisis_risk": "false-ish"}', True),
        (b'{"details": {"crisis_risk": true}, "crisis_risk": false}', True),
        (b'{"note": "crisis_risk", "crisis_risk": false}', True),
        (b'{"Crisis Risk": "yes"}', True),
        (b"crisis_risk=on", True),
    ],
)
def test_which_requests_take_the_crisis_lane(body, crisis_lane):
    """Every body that may be flagged takes the crisis lane; one whose every mention of the
    flag is a JSON key reading false does not (it would fill the lane with ordinary requests)."""
    from recommender.service._crisis import needs_crisis_lane

    assert needs_crisis_lane(body, None) is crisis_lane
