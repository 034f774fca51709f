"""POST /erasures and the erasure in parts, reviewed: a part that changes nothing is not counted
as written; on PostgreSQL a role that may not finish an erasure is refused before its first part
(a role granted what revision 0008 asked, INSERT but not UPDATE on ``erasures``, erased the
first part and was refused at the second, saying "nothing was erased"); the service's role
(reading and appending) gets a 503 naming the grants, with nothing erased and crisis answers
given, and with the grants the README lists the route erases; and through a real
``recommender serve``: answers given while a many-part erasure runs, the people redacted after
it, the audit export consistent, and a 504 that leaves the erasure going on to its end."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

import recommender.service._erasure as erasure
from recommender.errors import InputError
from recommender.service import AuditLog, erase_people, erasure_history
from recommender.service._audit_tables import recommendations
from recommender.service._store_check import GRANTS
from service_fixtures import SALT, _app, auth, profile
from service_fixtures import champion_home, copy_champion  # noqa: F401 - fixtures
from service_fixtures import asgi_client, linear_model, service_home  # noqa: F401 - fixtures
from test_erasure_dec06 import _fill, _rows_of, _snapshot
from test_loop_outcome_correction import store_url  # noqa: F401 - fixture: SQLite, PostgreSQL
from test_service_store_privileges import ROLE, store  # noqa: F401 - fixture: a reading role

ROOT = Path(__file__).resolve().parents[1]
PEOPLE = [f"p-{i}" for i in range(5)]
# _fill's people hold 7, 4, 3, 3 and 2 rows: parts of at most 4 rows are five, one a person.
PART_ROWS = 4


def test_an_erasure_that_finds_no_one_writes_no_part(store_url):  # noqa: F811
    audit = AuditLog(store_url, salt=SALT)
    _fill(audit)
    nobody = erase_people(audit, ["nobody", "no-one"], part_rows=PART_ROWS)
    assert (nobody.found, nobody.erasure_id, nobody.parts) == (0, None, 0)
    done = erase_people(audit, PEOPLE, part_rows=PART_ROWS)
    assert done.parts == 5
    again = erase_people(audit, PEOPLE, part_rows=PART_ROWS)  # all erased: nothing written
    assert (again.found, again.erasure_id, again.parts) == (0, None, 0)
    assert len(erasure_history(audit)) == 1
    audit.close()


def _answer_again(database: Path, request_id: str, number: int) -> None:
    """The service answering the person of ``request_id`` again (request ``again-<number>``):
    a writer that waits for the store's write lock as long as an answer may wait (10 s)."""
    writer = sa.create_engine(f"sqlite:///{database}", connect_args={"timeout": 10})
    row = recommendations.c
    kept = [c for c in recommendations.columns if c.name != "id"]
    values = [sa.literal(f"again-{number}") if c.name == "request_id" else c for c in kept]
    copy = recommendations.insert().from_select(
        kept, sa.select(*values).where(row.request_id == request_id)
    )
    try:
        with writer.begin() as connection:
            connection.execute(copy)
    finally:
        writer.dispose()


def test_a_reader_meanwhile_does_not_hold_answers_behind_the_checkpoint_of_each_part(tmp_path):
    """Found: each part's checkpoint (TRUNCATE) waited for an open reader, an auditor's export
    say, holding the write lock all the while (30 s, the busy timeout): an answer written then
    waited that long, and was refused past its own wait."""
    database = tmp_path / "audit.db"
    audit = AuditLog(f"sqlite:///{database}", salt=SALT)
    _fill(audit)
    request = _rows_of(audit, "p-4")["recommendations"][0]
    reader = sqlite3.connect(database, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM recommendations").fetchone()[0] > 0
    done: dict = {}

    def erase() -> None:
        done["report"] = erase_people(audit, PEOPLE[:4], part_rows=PART_ROWS)

    eraser = threading.Thread(target=erase, daemon=True)
    eraser.start()
    answers = 0
    while eraser.is_alive():  # answers all the while the erasure runs, none refused
        _answer_again(database, request, answers)
        answers += 1
    eraser.join()
    reader.execute("COMMIT")
    reader.close()
    assert answers >= 1 and done["report"].parts == 4
    assert len(_rows_of(audit, "p-4")["recommendations"]) == 1 + answers  # p-4 not erased
    audit.close()


# -- PostgreSQL: what the erasing role may do -----------------------------------------------------


@pytest.fixture
def pg_store(store):
    """``store``'s PostgreSQL store, filled by its owner, and ``(run, url, owner)``: SQL run as
    the owner, and the URL of a role granted what the service's role is documented to hold
    (GRANTS: reading and appending), nothing more."""
    run, url, owner_url = store
    run(*(grant.format(role=ROLE) for grant in GRANTS))
    owner = AuditLog(owner_url, salt=SALT)
    _fill(owner)
    yield run, url, owner
    owner.close()


# What revision 0008 asked of the erasing role: INSERT on erasures, not yet UPDATE.
GRANTS_OF_0008 = (
    f"GRANT UPDATE ON recommendations TO {ROLE}",
    f"GRANT DELETE ON assignments, outcomes TO {ROLE}",
)


def test_a_role_that_could_not_finish_is_refused_before_the_first_part(pg_store):
    run, url, owner = pg_store
    run(*GRANTS_OF_0008)
    before = _snapshot(owner)
    service = AuditLog(url, salt=SALT)
    with pytest.raises(InputError) as refused:
        erase_people(service, PEOPLE, part_rows=PART_ROWS)
    said = str(refused.value)
    assert "nothing was erased" in said and "UPDATE on erasures" in said
    assert f"GRANT UPDATE ON TABLE erasures TO {ROLE};" in said
    assert "pw-not-shown" not in said
    assert _snapshot(owner) == before  # not one part written
    run(f"GRANT UPDATE ON erasures TO {ROLE}")
    done = erase_people(service, PEOPLE, part_rows=PART_ROWS)
    assert (done.found, done.parts) == (5, 5)
    (record,) = erasure_history(owner)
    assert record["completed_at"] is not None and record["people_found"] == 5
    service.close()


def test_a_privilege_lost_between_parts_says_what_stays_erased(pg_store, monkeypatch):
    """Refused by the database after the first part (a privilege revoked meanwhile), the
    message says the part written stays erased and how to finish, not "nothing was erased"."""
    run, url, owner = pg_store
    run(*GRANTS_OF_0008)
    monkeypatch.setattr(erasure, "_check_permitted", lambda audit, connection: None)
    service = AuditLog(url, salt=SALT)
    with pytest.raises(InputError) as refused:
        erase_people(service, PEOPLE, part_rows=PART_ROWS)
    said = str(refused.value)
    (record,) = erasure_history(owner)
    assert "nothing was erased" not in said
    assert "the 1 part(s) written before stay erased (1 people), recorded as erasure " in said
    assert f"erasure {record['id']}, not completed" in said
    assert record["completed_at"] is None and record["people_found"] == 1
    assert not any(_rows_of(owner, "p-0").values()) and any(_rows_of(owner, "p-1").values())
    service.close()


def _readme_grants() -> list[str]:
    """The GRANT statements README's "To erase people" gives the service's role for the route."""
    text = (ROOT / "README.md").read_text()
    block = text[text.index("GRANT UPDATE ON recommendations TO recommender_svc") :]
    block = block[: block.index("```")]
    return [line.rstrip(";") for line in block.splitlines() if line.startswith("GRANT")]


@pytest.fixture
def pg_served(pg_store, service_home, linear_model, monkeypatch):  # noqa: F811
    """The in-process app whose audit store is ``pg_store``'s, opened with the service's role."""
    from starlette.testclient import TestClient

    from recommender.service import _store_check
    from recommender.service import service as service_module
    from recommender.service._serving import Serving

    run, url, owner = pg_store
    monkeypatch.setattr(service_module, "load_champion_model", lambda: (linear_model, "7"))
    monkeypatch.setattr(Serving, "_follow_reloads", lambda self: None)
    monkeypatch.setattr(_store_check, "CHECK_EVERY", 0.0)
    monkeypatch.setenv("RECOMMENDER_AUDIT_URL", url)
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        yield client, run, owner


def test_the_services_role_is_told_what_to_grant_and_with_the_readme_grants_it_erases(pg_served):
    client, run, owner = pg_served
    assert client.get("/readyz").status_code == 200  # the role holds what serving needs
    before = _snapshot(owner)
    body = {"person_ids": ["p-0", "p-1"]}
    refused = client.post("/erasures", json=body, headers=auth("program"))
    assert refused.status_code == 503, refused.text
    said = refused.json()["error"]
    assert "nothing was erased" in said
    for privilege in (
        "UPDATE on recommendations",
        "DELETE on assignments",
        "DELETE on outcomes",
        "UPDATE on erasures",
    ):
        assert privilege in said
    assert re.search(
        r"GRANT DELETE ON TABLE (assignments, outcomes|outcomes, assignments) TO", said
    )
    assert "recommender audit erase" in said  # or erase with the owner's role
    assert "pw-not-shown" not in refused.text and "p-0" not in refused.text
    assert _snapshot(owner) == before
    # Answers are unaffected, crisis answers first of all.
    crisis = client.post(
        "/recommend", json=profile(person_id="p-0", crisis_risk=True), headers=auth("program")
    )
    assert crisis.status_code == 200 and crisis.json()["safety"]["level"] == "crisis"
    served = client.post("/recommend", json=profile(person_id="p-7"), headers=auth("program"))
    assert served.status_code == 200
    # With the grants the README lists, the same request erases.
    grants = _readme_grants()
    assert len(grants) >= 3
    run(*(grant.replace("recommender_svc", ROLE) for grant in grants))
    done = client.post("/erasures", json=body, headers=auth("program"))
    assert done.status_code == 200, done.text
    assert (done.json()["found"], done.json()["missing"]) == (2, [])
    for person in ("p-0", "p-1"):
        assert not any(_rows_of(owner, person).values())
    assert erasure_history(owner)[-1]["completed_at"] is not None


# -- through a real `recommender serve` ----------------------------------------------------------

# People in the store before the server starts. 40 make the erasure below 30 parts of one
# person: the 15 answers it must let through meanwhile are five times the 3 that the erasure
# holding the lock let through in 200 parts; 80 (60 parts) only kept the answers' loop, and the
# CPU it takes, going twice as long.
SERVED = [f"q-{i:03d}" for i in range(40)]
ANSWERS_EACH = 3  # each answered three times: 3 answers and 3 assignments a person


def _filled_home(copy_champion, tmp_path, part_rows: int) -> tuple[Path, dict]:
    """A champion's home whose audit store holds SERVED's answers, and the server's environment
    (a serve.yaml with ``erasure.part_rows``)."""
    import yaml

    from recommender.catalog import load_catalog
    from recommender.service import load_serve_config
    from recommender.service._engine import RecommendationEngine
    from service_fixtures import LinearModel

    home = copy_champion(tmp_path / "home")
    audit = AuditLog(f"sqlite:///{home / 'audit.db'}", salt=SALT)
    engine = RecommendationEngine(
        LinearModel(), "5", catalog=load_catalog(), config=load_serve_config(), audit=audit
    )
    for _ in range(ANSWERS_EACH):
        engine.recommend(
            [engine.check_row(profile(person_id=p)) for p in SERVED], caller_role="program"
        )
    audit.close()
    settings = yaml.safe_load((ROOT / "configs" / "serve.yaml").read_text())
    settings["erasure"]["part_rows"] = part_rows
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump(settings))
    return home, {"RECOMMENDER_SERVE_CONFIG": str(config)}


def _csv(text: str) -> list[dict]:
    import csv
    import io

    return list(csv.DictReader(io.StringIO(text)))


def test_answers_go_on_while_a_many_part_erasure_runs_over_http(copy_champion, tmp_path):
    import threading
    import time

    import httpx

    from service_fixtures import running_server

    home, env = _filled_home(copy_champion, tmp_path, part_rows=6)  # a person a part
    erased, kept = SERVED[:30], SERVED[30:]
    with running_server(home, env=env) as url, httpx.Client(base_url=url, timeout=120) as http:
        before = _csv(http.get("/audit/export", headers=auth("auditor")).text)
        assert len(before) == len(SERVED) * ANSWERS_EACH
        warm = http.post("/recommend", json=profile(person_id="r-warm"), headers=auth("program"))
        assert warm.status_code == 200
        sent = threading.Event()
        done: dict = {}

        def erase() -> None:
            sent.set()
            done["response"] = http.post(
                "/erasures", json={"person_ids": [*erased, "nobody"]}, headers=auth("program")
            )
            done["at"] = time.monotonic()

        eraser = threading.Thread(target=erase)
        eraser.start()
        sent.wait()
        answered = []  # (began, ended, status, safety level) of each answer meanwhile
        number = 0
        while eraser.is_alive():
            began = time.monotonic()
            body = profile(person_id=f"r-{number}", crisis_risk=number % 2 == 1)
            reply = http.post("/recommend", json=body, headers=auth("program"))
            answered.append((began, time.monotonic(), reply.status_code, reply.json()))
            number += 1
        eraser.join()

        response = done["response"]
        assert response.status_code == 200, response.text
        said = response.json()
        assert "q-0" not in response.text and "nobody" not in response.text
        assert (said["asked"], said["found"], said["missing"]) == (31, 30, [30])
        assert said["parts"] == 30  # one person (6 rows) a part
        assert (said["answers_redacted"], said["assignments_deleted"]) == (90, 90)
        # Every answer asked for meanwhile was given, crisis answers as crisis answers, and
        # answers began and ended while the erasure was under way.
        assert answered and all(status == 200 for _, _, status, _ in answered)
        for _, _, _, body in answered[1::2]:
            assert body["safety"]["level"] == "crisis"
        # Not only in the odd gap: SQLite hands its lock to no one in turn, and parts taken one
        # after the other kept every answer waiting for the whole erasure (3 answers during
        # 200 parts); the erasure now leaves the lock free between parts (dozens a gap).
        during = sum(ended < done["at"] for _, ended, _, _ in answered)
        assert during >= said["parts"] // 2, (during, said["parts"])

        # Afterwards: the erased people's answers kept but redacted, the others as they were.
        after = _csv(http.get("/audit/export", headers=auth("auditor")).text)
        assert len(after) == len(before) + 1 + len(answered)
        audit = AuditLog(f"sqlite:///{home / 'audit.db'}", salt=SALT)
        hashes = {audit.person_hash(p): p for p in SERVED}
        by_person = {}
        for row in after:
            by_person.setdefault(hashes.get(row["person_hash"], row["person_hash"]), []).append(row)
        assert not set(erased) & set(by_person)
        assert all(len(by_person[p]) == ANSWERS_EACH for p in kept)
        redacted = by_person["erased"]
        assert len(redacted) == 90
        assert all(row["request_id"] == f"erased-{row['id']}" for row in redacted)
        for person in erased[:3] + erased[-3:]:
            assert not any(_rows_of(audit, person).values())
        assert all(_rows_of(audit, p)["assignments"] for p in kept)
        audit.close()
        # The erasure's record, as the auditor reads it: the counts answered, completed.
        (record,) = _csv(http.get("/audit/export?table=erasures", headers=auth("auditor")).text)
        assert int(record["id"]) == said["erasure_id"] and record["completed_at"]
        assert (record["people_asked"], record["people_found"]) == ("31", "30")
        assert int(record["answers_redacted"]) == said["answers_redacted"]
        assert int(record["assignments_deleted"]) == said["assignments_deleted"]
        # A person erased and served again is a new record, answered as anyone.
        again = http.post("/recommend", json=profile(person_id="q-000"), headers=auth("program"))
        assert again.status_code == 200


def test_past_the_timeout_the_client_gets_a_504_and_the_erasure_goes_on_to_its_end(
    copy_champion, tmp_path
):
    """The request's timeout cancels the answer, not the erasure (its thread goes on): a 504,
    which says so, and the record in the export completes once the erasure has finished."""
    import sqlite3
    import time

    import httpx

    from service_fixtures import running_server

    home, env = _filled_home(copy_champion, tmp_path, part_rows=12)
    env["RECOMMENDER_SERVE_TIMEOUT"] = "1"
    with running_server(home, env=env) as url, httpx.Client(base_url=url, timeout=60) as http:
        # Another writer holds the store's write lock: the erasure's first part waits for it
        # (the service's busy timeout, 30 s), past the request's timeout.
        blocker = sqlite3.connect(home / "audit.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            late = http.post("/erasures", json={"person_ids": SERVED}, headers=auth("program"))
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert late.status_code == 504, late.text
        assert "q-0" not in late.text
        said = late.json()["error"]
        assert "goes on" in said and "table=erasures" in said
        deadline = time.monotonic() + 60  # a bound on a wait, not a measure
        while True:
            records = _csv(http.get("/audit/export?table=erasures", headers=auth("auditor")).text)
            if records and records[0]["completed_at"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        (record,) = records
        assert record["completed_at"] and record["people_found"] == str(len(SERVED))
        audit = AuditLog(f"sqlite:///{home / 'audit.db'}", salt=SALT)
        assert not any(any(_rows_of(audit, p).values()) for p in SERVED)
        audit.close()


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"person_ids": [f"p-{i}" for i in range(10_001)]}, 422, "person_ids"),
        ({"person_ids": "p-0"}, 422, "person_ids"),
        ('{"person_ids": ["p-1", "\\ud800p-0"]}', 400, "person_ids[1]"),  # a lone surrogate
        ({"person_ids": ["p-1", None]}, 422, "person_ids[1]"),
        ('{"person_ids": ["p-0", ', 400, None),
    ],
)
def test_a_refused_body_echoes_no_id_in_the_answer_or_the_log(
    asgi_client, caplog, body, status, field
):
    caplog.set_level("DEBUG")
    headers = auth("program")
    if isinstance(body, str):
        refused = asgi_client.post(
            "/erasures", content=body, headers={**headers, "Content-Type": "application/json"}
        )
    else:
        refused = asgi_client.post("/erasures", json=body, headers=headers)
    assert refused.status_code == status, refused.text
    if field is not None:
        (problem, *_) = refused.json()["problems"]
        assert problem["field"] == field and problem["value"] == "(hidden)"
    assert "p-0" not in refused.text and "p-1" not in refused.text
    assert "p-0" not in caplog.text and "p-1" not in caplog.text


def test_ids_the_recommend_rule_refuses_now_are_looked_for_not_refused(asgi_client):
    """An id stored before the person-id rule (a trailing space, 70 characters) must still be
    erasable: the route refuses only what no store can hold, reports the rest by position."""
    odd = ["p-0 ", "p" * 70, "p-0", "p-0"]  # the last two: one person given twice
    said = asgi_client.post("/erasures", json={"person_ids": odd}, headers=auth("program"))
    assert said.status_code == 200, said.text
    assert (said.json()["asked"], said.json()["missing"]) == (3, [0, 1, 2, 3])
    assert "p-0" not in said.text and "ppp" not in said.text
