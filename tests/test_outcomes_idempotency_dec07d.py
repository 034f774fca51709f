"""POST /outcomes with an Idempotency-Key: a retry is answered as the first attempt was.

Without a key, a program whose POST /outcomes timed out and who sends it again gets 409 whether
its first attempt was recorded or the outcomes conflict with others; with one, the retry gets
the first answer again (200, the same bytes, ``Idempotent-Replayed: true``), the key with
another body is refused (422), and the store keeps the answer in the transaction that records
the outcomes (SQLite and PostgreSQL, an upgraded store included).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic import command

from recommender.service import AuditLog, OutcomeRefused, outcome_history, record_outcomes
from recommender.service._audit_tables import (
    assignments,
    outcome_submissions,
    recommendations,
)
from recommender.service._migrate import _config, head_revision, schema_revision
from recommender.service._outcome_keys import (
    KeyRefused,
    answered_before,
    read_key,
    submission_key,
)
from service_fixtures import KEYS, SALT, auth, profile
from service_fixtures import asgi_client, linear_model, service_home  # noqa: F401 - fixtures
from service_fixtures import champion_home, server_url  # noqa: F401 - fixtures
from test_loop_outcomes import ARMS, _served
from test_service_store_privileges import ROLE, serve, store  # noqa: F401 - fixtures

KEY = "8e03978e-40d5-43e8-bc93-6894a57f9324"
OTHER_PROGRAM_KEY = "second-program-key-7654321"


def _outcome(i: int, **changes) -> dict:
    return {
        "person_id": f"p-{i}",
        "measured_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "arm_taken": "coaching",
        "ee_followup": 20,
        "dp_followup": 7,
        "pa_followup": 38,
        **changes,
    }


def _keyed(role: str = "program", key: str = KEY) -> dict:
    return {**auth(role), "Idempotency-Key": key}


def _serve(client, *people: int) -> None:
    for i in people:
        answer = client.post(
            "/recommend", json=profile(person_id=f"p-{i}"), headers=auth("program")
        )
        assert answer.status_code == 200, answer.text


def _stored(client) -> list[dict]:
    export = client.get("/audit/export?table=outcomes", headers=auth("auditor"))
    assert export.status_code == 200, export.text
    return list(csv.DictReader(io.StringIO(export.text)))


def test_a_retry_with_the_key_gets_the_first_answer_marked_replayed(asgi_client):  # noqa: F811
    _serve(asgi_client, 0)
    body = {"outcomes": [_outcome(0)]}
    first = asgi_client.post("/outcomes", json=body, headers=_keyed())
    assert first.status_code == 200, first.text
    assert first.json() == {"recorded": 1, "corrected": 0, "already_recorded": 0}
    assert "idempotent-replayed" not in first.headers
    # The response was lost: the same request again, fields in another order.
    again = asgi_client.post(
        "/outcomes",
        json={"outcomes": [dict(reversed(body["outcomes"][0].items()))]},
        headers=_keyed(),
    )
    assert again.status_code == 200, again.text
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == "application/json"
    # The key as the IETF draft writes it (a quoted string) is the same key.
    quoted = asgi_client.post("/outcomes", json=body, headers=_keyed(key=f'"{KEY}"'))
    assert quoted.status_code == 200 and quoted.headers["idempotent-replayed"] == "true"
    assert len(_stored(asgi_client)) == 1  # recorded once
    # Without the key, the same retry is what it always was: a duplicate, 409.
    unkeyed = asgi_client.post("/outcomes", json=body, headers=auth("program"))
    assert unkeyed.status_code == 409 and "already recorded" in unkeyed.json()["error"]
    assert "idempotent-replayed" not in unkeyed.headers


def test_the_key_with_another_body_is_refused_naming_it(asgi_client):  # noqa: F811
    _serve(asgi_client, 0, 1)
    body = {"outcomes": [_outcome(0)]}
    assert asgi_client.post("/outcomes", json=body, headers=_keyed()).status_code == 200
    for other in (
        {"outcomes": [_outcome(1)]},  # another person
        {"outcomes": [_outcome(0, ee_followup=25)], "correct": True},  # a correction
    ):
        refused = asgi_client.post("/outcomes", json=other, headers=_keyed())
        assert refused.status_code == 422, refused.text
        (problem,) = refused.json()["problems"]
        assert problem["field"] == "Idempotency-Key" and problem["value"] == KEY
        assert KEY in problem["message"] and "body differs" in problem["message"]
        assert "new key" in problem["accepted"]
        assert refused.json()["error"].startswith("Idempotency-Key: ")
    assert [row["ee_followup"] for row in _stored(asgi_client)] == ["20"]  # nothing more


def test_a_refused_submission_leaves_its_key_unused(asgi_client):  # noqa: F811
    # Measured after the answer to come (within the hour's grace for clocks ahead).
    later = (datetime.now(timezone.utc) + timedelta(minutes=30)).replace(microsecond=0)
    body = {"outcomes": [_outcome(0, measured_at=later.isoformat())]}
    unknown = asgi_client.post("/outcomes", json=body, headers=_keyed())  # p-0 not served yet
    assert unknown.status_code == 422
    assert unknown.json()["problems"][0]["message"].startswith("unknown person")
    _serve(asgi_client, 0)
    recorded = asgi_client.post("/outcomes", json=body, headers=_keyed())
    assert recorded.status_code == 200 and "idempotent-replayed" not in recorded.headers
    assert recorded.json()["recorded"] == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty"),
        ('""', "empty"),
        ("k" * 256, "256 characters long"),
        ("caf\u00e9-1", "at byte 4 of the key, which is not printable ASCII"),
        ("tab\there", "holds the byte 0x09 at byte 4"),
        ('"a\\b"', "escapes 'b'"),
    ],
)
def test_a_key_that_is_not_printable_ascii_is_refused_naming_the_header(  # noqa: F811
    asgi_client, value, message
):
    _serve(asgi_client, 0)
    headers = {**auth("program"), "Idempotency-Key": value.encode("latin-1")}
    refused = asgi_client.post("/outcomes", json={"outcomes": [_outcome(0)]}, headers=headers)
    assert refused.status_code == 400, refused.text
    (problem,) = refused.json()["problems"]
    assert problem["field"] == "Idempotency-Key" and message in problem["message"]
    assert "1 to 255 printable ASCII characters" in problem["accepted"]
    assert _stored(asgi_client) == []


def test_a_key_given_twice_is_refused(asgi_client):  # noqa: F811
    _serve(asgi_client, 0)
    headers = [*auth("program").items(), ("Idempotency-Key", "a"), ("Idempotency-Key", "b")]
    refused = asgi_client.post("/outcomes", json={"outcomes": [_outcome(0)]}, headers=headers)
    assert refused.status_code == 400
    assert refused.json()["problems"][0]["message"] == "given 2 times; send it once"
    assert _stored(asgi_client) == []


@pytest.fixture
def two_programs(service_home, monkeypatch):  # noqa: F811
    keys = {**KEYS, "program2": OTHER_PROGRAM_KEY}
    monkeypatch.setenv(
        "RECOMMENDER_API_KEYS",
        ",".join(f"{role.rstrip('2')}={key}" for role, key in keys.items()),
    )


def test_keys_are_each_api_keys_own(two_programs, asgi_client):  # noqa: F811
    _serve(asgi_client, 0, 1)
    other = {"Authorization": f"Bearer {OTHER_PROGRAM_KEY}", "Idempotency-Key": KEY}
    mine = {"outcomes": [_outcome(0)]}  # sent twice: the same measurement, to the second
    first = asgi_client.post("/outcomes", json=mine, headers=_keyed())
    assert first.status_code == 200
    # The other program's same key names its own submission: neither a replay nor a reuse.
    theirs = asgi_client.post("/outcomes", json={"outcomes": [_outcome(1)]}, headers=other)
    assert theirs.status_code == 200 and "idempotent-replayed" not in theirs.headers
    # Nor does a key of the second program answer with the first one's answer.
    copied = asgi_client.post("/outcomes", json=mine, headers={**other, "Idempotency-Key": "k2"})
    assert copied.status_code == 409, copied.text  # the first program's outcome: a duplicate
    assert len(_stored(asgi_client)) == 2


def test_the_header_is_documented_on_the_route(asgi_client):  # noqa: F811
    route = asgi_client.get("/docs.json").json()["paths"]["/outcomes"]["post"]
    (header,) = [p for p in route["parameters"] if p["name"] == "Idempotency-Key"]
    assert header["in"] == "header" and header["required"] is False
    assert header["schema"] == {"type": "string", "minLength": 1}
    assert "Idempotent-Replayed" in route["responses"]["200"]["headers"]
    assert "Idempotency-Key" in route["responses"]["422"]["description"]
    assert "Idempotency-Key" in route["responses"]["400"]["description"]


def test_read_key_takes_the_drafts_quoted_form_and_stripes_bare_one():
    assert read_key(['"a \\"quoted\\" key"']) == 'a "quoted" key'
    assert read_key(["a key with spaces"]) == "a key with spaces"
    assert read_key(["k" * 255]) == "k" * 255
    assert read_key([]) is None
    with pytest.raises(KeyRefused, match="byte 0xE9 at byte 4"):  # as a header reads it
        read_key(["caf\u00e9"])


# -- the store, SQLite and PostgreSQL ----------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    return request.getfixturevalue("postgres").database("audit")


def _record(audit, rows, submission=None, **options):
    now = datetime.now(timezone.utc) + timedelta(seconds=5)
    kept = None
    if submission is not None:
        from starlette.responses import JSONResponse

        def kept(report):
            return submission.row(JSONResponse(report.as_dict()), now)

    return record_outcomes(
        audit, rows, arms=ARMS, source="api", now=now, submission=kept, **options
    )


def test_the_answer_is_kept_with_the_outcomes_or_not_at_all(store_url):
    audit = AuditLog(store_url, salt=SALT)
    _served(audit, n=2)
    rows = [_outcome(0)]
    key = submission_key(audit, KEY, "caller", rows, False)
    assert answered_before(audit, key) is None
    assert _record(audit, rows, key).recorded == 1
    replay = answered_before(audit, key)
    assert replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true"
    assert replay.body == b'{"recorded":1,"corrected":0,"already_recorded":0}'
    with audit.engine.connect() as connection:
        (kept,) = [dict(r._mapping) for r in connection.execute(sa.select(outcome_submissions))]
    # Digests only: neither the key nor any person id nor a score is stored in clear.
    assert KEY not in str(kept) and "p-0" not in str(kept)
    assert key.key_digest == kept["key_digest"] and len(kept["body_digest"]) == 64
    # The same key recording other outcomes (two requests at once): the key's row is refused
    # by the store, and the outcomes with it, in one transaction.
    with pytest.raises(OutcomeRefused) as caught:
        _record(audit, [_outcome(1)], key)
    assert caught.value.status == 409
    assert len(outcome_history(audit)) == 1
    # Another caller's same key is another key.
    assert answered_before(audit, submission_key(audit, KEY, "other", rows, False)) is None
    audit.close()


def test_a_store_at_revision_0009_upgrades_and_takes_keys(store_url):
    # A store with answers and outcomes, taken back to the revision before keys (which drops
    # only the new table), then opened as the upgraded service opens it.
    audit = AuditLog(store_url, salt=SALT)
    _served(audit, n=2)
    _record(audit, [_outcome(0)])
    audit.close()
    engine = sa.create_engine(store_url)
    with engine.begin() as connection:
        command.downgrade(_config(connection), "0009")
    assert schema_revision(engine) == "0009"
    assert not sa.inspect(engine).has_table("outcome_submissions")
    engine.dispose()

    upgraded = AuditLog(store_url, salt=SALT)
    assert schema_revision(upgraded.engine) == head_revision() >= "0010"
    assert [r["ee_followup"] for r in outcome_history(upgraded)] == [20]
    with upgraded.engine.connect() as connection:
        for table in (recommendations, assignments):
            assert connection.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 2
    rows = [_outcome(1)]
    key = submission_key(upgraded, KEY, "caller", rows, False)
    assert _record(upgraded, rows, key).recorded == 1
    assert answered_before(upgraded, key).status_code == 200
    assert len(outcome_history(upgraded)) == 2
    upgraded.close()


def test_a_role_granted_before_the_keys_keeps_serving_and_a_keyed_request_names_the_grant(
    store, serve
):
    run, url, _ = store
    # Granted what the service needed before revision 0010: everything but the new table.
    run(
        f"GRANT INSERT ON ALL TABLES IN SCHEMA public TO {ROLE}",
        f"REVOKE ALL ON outcome_submissions FROM {ROLE}",
    )
    with serve(url) as client:
        assert client.get("/readyz").status_code == 200
        _serve(client, 0, 1)
        refused = client.post("/outcomes", json={"outcomes": [_outcome(0)]}, headers=_keyed())
        assert refused.status_code == 503, refused.text
        error = refused.json()["error"]
        assert "GRANT SELECT, INSERT ON TABLE outcome_submissions" in error
        assert "nothing was recorded" in error and ROLE not in error
        unkeyed = client.post(
            "/outcomes", json={"outcomes": [_outcome(0)]}, headers=auth("program")
        )
        assert unkeyed.status_code == 200, unkeyed.text
        run(f"GRANT SELECT, INSERT ON outcome_submissions TO {ROLE}")
        # One body sent twice: two _outcome calls a second apart would be two measurements
        body = {"outcomes": [_outcome(1)]}
        keyed = client.post("/outcomes", json=body, headers=_keyed())
        assert keyed.status_code == 200, keyed.text
        again = client.post("/outcomes", json=body, headers=_keyed())
        assert again.headers["idempotent-replayed"] == "true"


def test_through_a_real_server_the_retry_is_replayed(server_url):  # noqa: F811
    import httpx

    # The session's server (other tests share it): a person and a key of this test's own.
    url, person, key = server_url, "idempotency-real-server-0", "idempotency-real-server-key"
    served = httpx.post(f"{url}/recommend", json=profile(person_id=person), headers=auth("program"))
    assert served.status_code == 200, served.text
    body = {"outcomes": [_outcome(0, person_id=person)]}
    first = httpx.post(f"{url}/outcomes", json=body, headers=_keyed(key=key), timeout=30)
    again = httpx.post(f"{url}/outcomes", json=body, headers=_keyed(key=key), timeout=30)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.content == first.content and "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    bad = httpx.post(f"{url}/outcomes", json=body, headers=_keyed(key=""), timeout=30)
    assert bad.status_code == 400 and bad.json()["problems"][0]["field"] == "Idempotency-Key"
