"""Person ids that are not what they seem: one rule at every entry.

An id is hashed byte for byte, so an id holding an invisible character (U+200B), a
bidirectional control (U+202E, the "Trojan Source" characters), a control (NUL), a byte-order
mark, a space at an end or a decomposed accent is another person than the id it looks like, and
a follow-up score sent with what looks like the same id would never link. Each entry refuses
such an id, naming the field or row and the character by its code point (never the id), while
a crisis flag still gets its resources and an id stored before the rule still links.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pandas as pd
import pytest

from recommender.catalog import load_catalog
from recommender.cli import main
from recommender.cohort import (
    PERSON_ID_ACCEPTED,
    person_id_problem,
    read_cohort,
    shown_id,
    validate_cohort,
)
from recommender.service import AuditLog, OutcomeRefused, RecommendationEngine
from recommender.service import load_serve_config, record_outcomes
from service_fixtures import SALT, LinearModel, auth, profile
from service_fixtures import outcome as _outcome
from service_fixtures import asgi_client, linear_model, service_home  # noqa: F401

ARMS = load_catalog().arm_ids

# (id, code point the refusal names): one of each kind the rule refuses.
REFUSED = [
    ("p\x001", "U+0000"),  # NUL
    ("p\x1f1", "U+001F"),  # C0 control
    ("p\t1", "U+0009"),  # a tab inside
    ("p\x851", "U+0085"),  # C1 control (NEXT LINE: a log reader's line break)
    ("p-0\u200b1", "U+200B"),  # zero width space
    ("p-0\u200c1", "U+200C"),
    ("p-0\u200d1", "U+200D"),
    ("p-0\u200e1", "U+200E"),  # left-to-right mark
    ("p-0\u200f1", "U+200F"),
    ("p\u202a1", "U+202A"),
    ("p\u202b1", "U+202B"),
    ("p\u202c1", "U+202C"),
    ("p\u202d1", "U+202D"),
    ("p\u202e1", "U+202E"),  # right-to-left override
    ("p\u20661", "U+2066"),
    ("p\u20671", "U+2067"),
    ("p\u20681", "U+2068"),
    ("p\u20691", "U+2069"),
    ("\ufeffp-1", "U+FEFF"),  # a byte-order mark leaked into the id
    ("p\u00a01", "U+00A0"),  # no-break space
    ("p\u20281", "U+2028"),  # line separator
    ("p\ue0001", "U+E000"),  # private use
    ("p\ufdd01", "U+FDD0"),  # noncharacter
    ("p\u03781", "U+0378"),  # unassigned
    ("p\U000e0001", "U+E0001"),  # tag character
    ("Jose\u0301", "U+0301"),  # NFD: the accent as a character of its own
    ("\u212b1", "U+212B"),  # ANGSTROM SIGN: NFC writes it U+00C5
    ("p1 ", "U+0020"),  # a space at an end
    (" p1", "U+0020"),
]

ACCEPTED = ["p-000123", "A 1", "Jos\u00e9", "\u674e\u96f7-7", "p\U0001f600", "\u00e9" * 64, "x"]


def _no_raw(text: str, person_id: str) -> None:
    """Neither the id nor any character the rule refuses appears as itself in ``text``."""
    refused = [c for c in person_id if not c.isprintable()]
    assert not any(c in text for c in refused), ascii(text)
    if len(person_id) > 3:
        assert person_id not in text, ascii(text)


# -- the rule ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("person_id", "code"), REFUSED)
def test_the_rule_names_the_offending_character_by_code_point_never_itself(person_id, code):
    problem = person_id_problem(person_id)
    assert problem is not None and code in problem, problem
    _no_raw(problem, person_id)
    assert problem.isascii()


@pytest.mark.parametrize("person_id", ACCEPTED)
def test_ids_of_letters_digits_symbols_and_inner_spaces_in_nfc_are_accepted(person_id):
    assert person_id_problem(person_id) is None


def test_length_is_counted_in_code_points_and_an_id_of_spaces_is_refused():
    assert person_id_problem("\u00e9" * 64) is None  # 128 bytes in UTF-8, 64 characters
    assert "65 characters" in person_id_problem("\u00e9" * 65)
    assert person_id_problem("   ") == "holds only spaces"
    assert "U+D800" in person_id_problem("p\ud800")  # a lone surrogate, as JSON can write one


def test_shown_ids_escape_what_does_not_show_and_leave_the_rest():
    assert shown_id("p\u202e1") == "p<U+202E>1"
    assert shown_id("Jos\u00e9 1") == "Jos\u00e9 1"
    assert shown_id(" p1 ") == "<U+0020>p1<U+0020>"
    assert shown_id("Jose\u0301") == "Jose<U+0301>"  # looks like its NFC form: shown apart


# -- cohort files ------------------------------------------------------------------------------
def _cohort(ids) -> pd.DataFrame:
    return pd.DataFrame([profile(person_id=i) for i in ids])


def test_validate_refuses_each_bad_id_by_row_and_code_point(tmp_path):
    ids = ["p-1", *(i for i, _ in REFUSED)]
    report = validate_cohort(_cohort(ids))
    found = {p.row: p for p in report.errors}
    assert sorted(found) == list(range(1, len(ids)))
    for row, (person_id, code) in enumerate(REFUSED, 1):
        problem = found[row]
        assert problem.rule == "id_characters" and problem.column == "person_id"
        assert f"row {row}" in problem.message and code in problem.message
        _no_raw(problem.message, person_id)
    _no_raw(report.format(max_listed=len(ids)), "p\u202e1")
    assert PERSON_ID_ACCEPTED in report.format()


def test_a_csv_file_keeps_spaces_and_a_byte_order_mark_inside_it_is_named(tmp_path):
    # A file's own byte-order mark is no id (pandas drops it); one inside, as two exports
    # joined with `cat` leave it, is: named as U+FEFF on the row it starts.
    first = _cohort(["p-1", "p-2 "]).to_csv(index=False)
    second = _cohort(["p-3"]).to_csv(index=False, header=False)
    path = tmp_path / "cohort.csv"
    path.write_bytes(b"\xef\xbb\xbf" + first.encode() + b"\xef\xbb\xbf" + second.encode())
    frame = read_cohort(path)
    assert frame.columns[0] == "person_id"
    assert frame["person_id"].tolist() == ["p-1", "p-2 ", "\ufeffp-3"]
    errors = {p.row: p.message for p in validate_cohort(frame).errors}
    assert sorted(errors) == [1, 2]
    assert "ends with a space" in errors[1] and "U+FEFF" in errors[2]


def test_parquet_ids_are_held_to_the_same_rule(tmp_path):
    path = tmp_path / "cohort.parquet"
    _cohort(["p-1", "p-1\u200b"]).to_parquet(path)
    report = validate_cohort(read_cohort(path))
    # Not a duplicate of p-1, and not silently another person: refused for what it holds.
    assert [(p.row, p.rule) for p in report.errors] == [(1, "id_characters")]


def test_the_validate_command_refuses_the_file_naming_row_and_character(tmp_path, capsys):
    path = tmp_path / "cohort.csv"
    _cohort(["p-1", "p\u202e1"]).to_csv(path, index=False)
    assert main(["validate", str(path)]) != 0
    said = capsys.readouterr()
    text = said.out + said.err
    assert "row 1" in text and "U+202E" in text and "Traceback" not in text
    _no_raw(text, "p\u202e1")


def _use_stand_in(monkeypatch):
    import recommender.registry as registry

    found = SimpleNamespace(uri="models:/stand-in", version="7")
    monkeypatch.setattr(registry, "resolve_model", lambda name: found)
    monkeypatch.setattr(registry, "load_model", lambda uri: LinearModel())


@pytest.mark.parametrize("command", ["score", "allocate"])
def test_a_bad_id_refuses_the_file_but_a_flagged_row_still_gets_its_resources(
    service_home, tmp_path, monkeypatch, capsys, command
):
    _use_stand_in(monkeypatch)
    rows = [profile(person_id="p-1"), profile(person_id="p\u200b2"), profile(person_id="p-3 ")]
    rows[2]["crisis_risk"] = "true"
    data, out = tmp_path / "cohort.csv", tmp_path / "out.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    extra = ["--budget", "5000"] if command == "allocate" else []
    assert main([command, "--data", str(data), "--out", str(out), *extra]) != 0
    err = capsys.readouterr().err
    assert "U+200B" in err and "Traceback" not in err
    _no_raw(err, "p\u200b2")
    assert not out.exists()
    crisis = pd.read_csv(tmp_path / "out.crisis.csv", keep_default_na=False)
    # The flagged person is named as the program wrote them, so the program can reach them.
    assert crisis["person_id"].tolist() == ["p-3 "]
    assert (crisis["safety_level"] == "crisis").all()
    assert crisis["referral"].str.contains("988").all()


# -- the HTTP routes ---------------------------------------------------------------------------
def _post(client, route, body):
    return client.post(route, json=body, headers=auth("program"))


def test_recommend_refuses_each_bad_id_with_422_naming_the_character(asgi_client):  # noqa: F811
    for person_id, code in REFUSED:
        answer = _post(asgi_client, "/recommend", profile(person_id=person_id))
        assert answer.status_code == 422, (ascii(person_id), answer.text)
        (problem,) = answer.json()["problems"]
        assert problem["field"] == "person_id" and problem["value"] == "(hidden)"
        assert code in problem["message"] and problem["accepted"] == PERSON_ID_ACCEPTED
        _no_raw(answer.text, person_id)
    for person_id in ACCEPTED:
        assert _post(asgi_client, "/recommend", profile(person_id=person_id)).status_code == 200


def test_a_crisis_flag_with_a_bad_id_still_gets_crisis_resources(asgi_client):  # noqa: F811
    one = _post(asgi_client, "/recommend", {"person_id": "p\u202e1", "crisis_risk": True})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["safety"]["level"] == "crisis" and body["safety"]["resources"]
    assert body["ranking"] == [] and body["recommended"] is None
    (ignored,) = [p for p in body["ignored"] if p["field"] == "person_id"]
    assert "U+202E" in ignored["message"] and ignored["value"] == "(hidden)"
    _no_raw(one.text, "p\u202e1")

    batch = _post(
        asgi_client,
        "/recommend_batch",
        {"profiles": [{"person_id": "q\u200b1", "crisis_risk": True}, profile(person_id="q 2 ")]},
    )
    assert batch.status_code == 200, batch.text
    results = batch.json()
    assert results["rejected"] == 1
    text = json.dumps(results)
    assert "crisis" in text and "U+0020" in text
    _no_raw(batch.text, "q\u200b1")


def test_batch_and_allocate_refuse_the_entry_by_index(asgi_client):  # noqa: F811
    batch = _post(
        asgi_client,
        "/recommend_batch",
        {"profiles": [profile(person_id="b-1"), profile(person_id="b\u20662")]},
    )
    assert batch.status_code == 200 and batch.json()["rejected"] == 1, batch.text
    assert "profiles[1].person_id" in batch.text and "U+2066" in batch.text
    plan = _post(
        asgi_client,
        "/allocate",
        {"profiles": [profile(person_id="a-1"), profile(person_id="a\ufeff2")], "budget": 5000},
    )
    assert plan.status_code == 422, plan.text
    (problem,) = plan.json()["problems"]
    assert problem["field"] == "profiles[1].person_id" and "U+FEFF" in problem["message"]
    _no_raw(plan.text, "a\ufeff2")
    flagged = {"person_id": "a\u202e3", "crisis_risk": True}
    plan = _post(asgi_client, "/allocate", {"profiles": [profile(), flagged], "budget": 5000})
    assert plan.status_code == 200, plan.text
    assert "crisis" in json.dumps(plan.json()) and "U+202E" in plan.text
    _no_raw(plan.text, "a\u202e3")


def test_a_lone_surrogate_in_json_is_refused_and_a_flag_beside_it_is_answered(asgi_client):  # noqa: F811
    body = json.dumps({"person_id": "X", "crisis_risk": True}).replace('"X"', '"\\ud800"')
    headers = {**auth("program"), "Content-Type": "application/json"}
    answer = asgi_client.post("/recommend", content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    (crisis,) = answer.json()["crisis_results"]
    assert crisis["answer"]["safety"]["level"] == "crisis"


# -- outcomes and corrections ------------------------------------------------------------------
@pytest.fixture
def audit():
    return AuditLog("sqlite://", salt="s")


def _served_before_the_rule(audit, person_ids):
    """Recommendations served to ``person_ids`` as the service accepted them before the rule:
    the rows are checked with a plain id and then carry the id as it was sent."""
    engine = RecommendationEngine(
        LinearModel(), "5", catalog=load_catalog(), config=load_serve_config(), audit=audit
    )
    rows = []
    for person_id in person_ids:
        row = engine.check_row(profile(person_id="plain"))
        rows.append({**row, "person_id": person_id})
    return engine.recommend(rows, caller_role="program")


def test_an_id_stored_before_the_rule_still_links_and_a_new_one_is_refused(audit):
    _served_before_the_rule(audit, ["old-1 ", "old\u200b2"])
    later = datetime.now(timezone.utc) + timedelta(seconds=5)
    report = record_outcomes(
        audit,
        [_outcome("old-1 "), _outcome("old\u200b2")],
        arms=ARMS,
        source="api",
        now=later,
    )
    assert report.recorded == 2  # hashed as sent, as before: nothing normalised
    with pytest.raises(OutcomeRefused) as refused:
        record_outcomes(audit, [_outcome("new\u200b3")], arms=ARMS, source="api", now=later)
    (problem,) = refused.value.problems
    assert problem["field"] == "outcomes[0].person_id" and problem["value"] == "(hidden)"
    assert "U+200B" in problem["message"] and problem["accepted"] == PERSON_ID_ACCEPTED
    assert refused.value.status == 422


def test_a_correction_is_held_to_the_same_rule(audit):
    _served_before_the_rule(audit, ["c-1"])
    later = datetime.now(timezone.utc) + timedelta(seconds=5)
    record_outcomes(audit, [_outcome("c-1")], arms=ARMS, source="api", now=later)
    with pytest.raises(OutcomeRefused) as refused:
        record_outcomes(
            audit, [_outcome("c-1\u202e", ee_followup=21)], arms=ARMS, source="api",
            correct=True, now=later,
        )  # fmt: skip
    assert "U+202E" in refused.value.problems[0]["message"]
    assert (
        record_outcomes(
            audit,
            [_outcome("c-1", ee_followup=21)],
            arms=ARMS,
            source="api",
            correct=True,
            now=later,
        ).corrected
        == 1
    )


def test_post_outcomes_refuses_a_never_served_bad_id_naming_it(asgi_client):  # noqa: F811
    answer = _post(asgi_client, "/outcomes", {"outcomes": [_outcome("o\u20281")]})
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["problems"]
    assert problem["field"] == "outcomes[0].person_id" and "U+2028" in problem["message"]
    _no_raw(answer.text, "o\u20281")


def test_outcomes_import_of_a_json_lone_surrogate_is_refused_not_a_crash(
    service_home, tmp_path, capsys
):
    AuditLog(f"sqlite:///{service_home / 'audit.db'}", salt=SALT)
    path = tmp_path / "followup.jsonl"
    line = json.dumps(_outcome("X")).replace('"X"', '"\\ud800"')
    path.write_text(line + "\n", encoding="utf-8")
    assert main(["outcomes", "import", str(path)]) == 2
    err = capsys.readouterr().err
    assert "outcomes[0].person_id" in err and "U+D800" in err and "Traceback" not in err
    assert "nothing was imported" in err
