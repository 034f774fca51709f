"""What an operator watching the service sees: its log lines and its Prometheus metrics.

An answer's audit row, its log line and BentoML's access-log line are tied by ids (the row's
``request_id`` or ``batch_id`` in the log line, which carries the request's span, the one the
``X-BentoML-Request-ID`` header gives the caller). A failed write to the audit store is logged
without the row it held. ``/metrics`` counts crisis answers by where they were recorded,
audit-store failures, and the model version each worker serves, summed over two workers of a
real ``recommender serve``, with labels no request can multiply.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from datetime import datetime, timezone

import httpx
import pytest
from service_fixtures import (  # noqa: F401  (fixtures)
    ENV_KEYS,
    KEYS,
    PROFILE,
    SALT,
    asgi_client,
    auth,
    champion_home,
    linear_model,
    profile,
    service_home,
    two_worker_server,
)

CRISIS = profile(person_id="crisis-person-0042", crisis_risk=True)


def _sample(name: str, **labels) -> float:
    """A metric's value in this process (the in-process app has no multiprocess folder)."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def _crisis_count(recorded_in: str) -> float:
    return _sample("recommender_crisis_answers_total", recorded_in=recorded_in)


def _refuse_inserts(database, table: str) -> None:
    """Make the service's audit store refuse every new row of ``table`` (as a full disk or a
    constraint would), while it stays open and readable."""
    with sqlite3.connect(database) as connection:
        connection.execute(
            f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'the disk refused the row'); END"
        )


def _logged(caplog) -> str:
    """Every line the service logged, as a handler prints it (tracebacks included)."""
    formatter = logging.Formatter("%(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


# -- the log, in process --------------------------------------------------------------------------
def test_an_answer_logs_the_id_of_its_audit_row_and_nothing_of_the_person(asgi_client, caplog):
    body = profile(person_id="person-who-must-not-show", ee=37, weekly_hours=71.5)
    with caplog.at_level(logging.INFO, logger="recommender.service"):
        response = asgi_client.post("/recommend", json=body, headers=auth("program"))
    assert response.status_code == 200, response.text
    request_id = response.json()["request_id"]
    lines = [r.getMessage() for r in caplog.records if request_id in r.getMessage()]
    assert lines == [f"recorded in the audit log: request {request_id}"]
    logged = _logged(caplog)
    for secret in ("person-who-must-not-show", "71.5", KEYS["program"]):
        assert secret not in logged


def test_a_batch_logs_its_batch_id_once(asgi_client, caplog):
    profiles = [profile(person_id=f"p-{i}") for i in range(3)]
    with caplog.at_level(logging.INFO, logger="recommender.service"):
        response = asgi_client.post(
            "/recommend_batch", json={"profiles": profiles}, headers=auth("program")
        )
    assert response.status_code == 200, response.text
    batch_id = response.json()["batch_id"]
    lines = [r.getMessage() for r in caplog.records if batch_id in r.getMessage()]
    assert lines == [f"recorded in the audit log: 3 rows of batch {batch_id}"]


@pytest.mark.parametrize("table", ["recommendations", "assignments"])
def test_a_failed_audit_write_is_logged_and_counted_without_the_row_it_held(
    asgi_client, service_home, caplog, table
):
    # SQLAlchemy's error quotes the statement's parameters by default: the person's hash, their
    # whole profile (scores, age, hours) and every effect estimated for them.
    _refuse_inserts(service_home / "audit.db", table)
    before = _sample("recommender_audit_store_failures_total", cause="IntegrityError")
    body = profile(person_id="person-who-must-not-show", ee=37, weekly_hours=71.5)
    with caplog.at_level(logging.INFO, logger="recommender.service"):
        response = asgi_client.post("/recommend", json=body, headers=auth("program"))
    assert response.status_code == 503, response.text
    assert "could not be written (IntegrityError)" in response.json()["error"]
    logged = _logged(caplog)
    assert "the disk refused the row" in logged  # the cause is there
    assert "[parameters:" not in logged and "hide_parameters" in logged
    for secret in ("person-who-must-not-show", "71.5", '"ee": 37', "-6."):
        assert secret not in logged
    after = _sample("recommender_audit_store_failures_total", cause="IntegrityError")
    assert after == before + 1


def test_crisis_answers_are_counted_by_where_they_were_recorded(asgi_client, service_home):
    counts = {where: _crisis_count(where) for where in ("audit_log", "service_log", "nowhere")}
    assert asgi_client.post("/recommend", json=CRISIS, headers=auth("program")).status_code == 200
    refused = asgi_client.post("/recommend", json=CRISIS, headers={"x-api-key": "wrong" * 4})
    assert refused.status_code == 401 and refused.json()["crisis_results"]
    batch = [CRISIS, profile(person_id="p-2", crisis_risk=True), profile(person_id="p-3")]
    answered = asgi_client.post(
        "/recommend_batch", json={"profiles": batch}, headers=auth("program")
    )
    assert answered.status_code == 200, answered.text
    _refuse_inserts(service_home / "audit.db", "recommendations")
    fallback = asgi_client.post("/recommend", json=CRISIS, headers=auth("program"))
    assert fallback.json()["safety"]["recorded_in"].startswith("service log")
    assert {where: _crisis_count(where) - counts[where] for where in counts} == {
        "audit_log": 3,
        "service_log": 1,
        "nowhere": 1,
    }


def test_the_version_served_follows_a_reload(asgi_client, linear_model, monkeypatch, caplog):
    from recommender.service import service as service_module

    assert _sample("recommender_model_version_served", version="7") == 1
    monkeypatch.setattr(service_module, "load_champion_model", lambda: (linear_model, "8"))
    with caplog.at_level(logging.INFO, logger="recommender.service"):
        reload = asgi_client.post("/reload", headers=auth("scientist"))
    assert reload.json()["model_version"] == "8"
    assert _sample("recommender_model_version_served", version="8") == 1
    assert _sample("recommender_model_version_served", version="7") == 0
    assert "reloaded: version 7 -> 8" in caplog.text


def test_a_refusal_logs_no_error_and_an_unexpected_failure_its_traceback(
    asgi_client, monkeypatch, caplog
):
    from recommender.service import RecommendationEngine

    program = auth("program")
    with caplog.at_level(logging.INFO):
        refused = [
            asgi_client.post("/recommend", content=b"{not json", headers=program),
            asgi_client.post("/recommend", json=PROFILE, headers={"x-api-key": "wrong" * 4}),
            asgi_client.post("/recommend", json=profile(age="forty"), headers=program),
            asgi_client.post("/recommend_batch", json={"profiles": 3}, headers=program),
            asgi_client.post(
                "/allocate", json={"profiles": [PROFILE], "budget": -1}, headers=program
            ),
            asgi_client.post("/recommend", content=b" " * (33 << 20), headers=program),
        ]
    assert [r.status_code for r in refused] == [400, 401, 422, 422, 422, 413]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]

    def broken(self, rows, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(RecommendationEngine, "recommend", broken)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        failed = asgi_client.post("/recommend", json=PROFILE, headers=program)
    assert failed.status_code == 500
    assert "a bug" not in failed.text  # the caller is told to read the log
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info[0] is RuntimeError


@pytest.fixture
def quiet_config(service_home, monkeypatch):
    """serve.yaml with ``log_level: WARNING``."""
    import yaml

    from recommender.paths import config_path

    settings = yaml.safe_load(config_path("serve.yaml").read_text())
    settings["log_level"] = "WARNING"
    path = service_home / "serve-quiet.yaml"
    path.write_text(yaml.safe_dump(settings))
    monkeypatch.setenv("RECOMMENDER_SERVE_CONFIG", str(path))
    return path


def test_log_level_warning_keeps_no_line_per_answer(quiet_config, asgi_client, caplog):
    response = asgi_client.post("/recommend", json=PROFILE, headers=auth("program"))
    assert response.status_code == 200, response.text
    assert not [r for r in caplog.records if r.name == "recommender.service"]
    refused = asgi_client.post("/recommend", json=CRISIS, headers={"x-api-key": "wrong" * 4})
    assert refused.status_code == 401
    assert [r.levelname for r in caplog.records if r.name == "recommender.service"] == ["WARNING"]


def test_an_unknown_log_level_is_refused_naming_it(tmp_path):
    from recommender.errors import InputError
    from recommender.service import load_serve_config

    path = tmp_path / "serve.yaml"
    path.write_text("log_level: verbose\ndisclaimer: Decision support.\n")
    with pytest.raises(InputError) as caught:
        load_serve_config(path)
    assert "log_level" in str(caught.value) and "'verbose'" in str(caught.value)
    assert "INFO" in str(caught.value)


@pytest.fixture
def registry_with_password(monkeypatch, caplog):
    """A registry URL with a password, and the service's INFO lines caught from its start."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://ops:registry-secret@mlflow.example.org")
    caplog.set_level(logging.INFO, logger="recommender.service")


def test_the_start_says_where_the_model_and_the_store_are_without_passwords(
    caplog, registry_with_password, asgi_client, service_home
):
    started = [
        r.getMessage()
        for r in caplog.get_records("setup")
        if r.getMessage().startswith("serving model version")
    ]
    assert started == [
        "serving model version 7 from the registry https://ops:***@mlflow.example.org; "
        f"audit store sqlite:///{service_home / 'audit.db'}"
    ]
    assert "registry-secret" not in _logged(caplog)


# -- a real `recommender serve` with two workers --------------------------------------------------
# Prometheus' text format, line by line: a comment, or a sample `name{labels} value`.
_SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? '
    r"[-+]?(\d+(\.\d*)?([eE][-+]?\d+)?|NaN|[-+]?Inf)$"
)


def _families(text: str) -> dict:
    """``{family name: [(sample name, labels, value), ...]}``, every line checked first."""
    from prometheus_client.parser import text_string_to_metric_families

    for line in text.splitlines():
        assert line.startswith("# ") or _SAMPLE.match(line), f"not Prometheus text: {line!r}"
    return {
        family.name: [(s.name, s.labels, s.value) for s in family.samples]
        for family in text_string_to_metric_families(text)
    }


def _total(families: dict, family: str, **labels) -> float:
    return sum(
        value
        for _, found, value in families.get(family, [])
        if all(found.get(k) == v for k, v in labels.items())
    )


def _in_parallel(n: int, send) -> list:
    """``send(i)`` for i < n on 8 threads, each on connections of its own (so both workers
    take some); the answers in order."""
    answers = [None] * n

    def run(k):
        with httpx.Client(timeout=60) as client:
            for i in range(k, n, 8):
                answers[i] = send(client, i)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return answers


@pytest.mark.slow
@pytest.mark.server
def test_two_workers_count_log_and_tie_each_answer_to_its_row(two_worker_server):
    # the session's two-worker server (service_fixtures), its log its own
    url, _, _, log_path = two_worker_server
    metrics = _families(httpx.get(f"{url}/metrics").text)
    before = {
        "crisis": _total(metrics, "recommender_crisis_answers", recorded_in="audit_log"),
        "nowhere": _total(metrics, "recommender_crisis_answers", recorded_in="nowhere"),
        "series": len(metrics["bentoml_service_request"]),
    }
    program = auth("program")

    def crisis(client, i):
        body = {**CRISIS, "person_id": f"crisis-person-{i:04d}"}
        return client.post(f"{url}/recommend", json=body, headers=program)

    def ordinary(client, i):
        body = profile(person_id=f"ordinary-person-{i:04d}", ee=i % 50)
        return client.post(f"{url}/recommend", json=body, headers=program)

    crises = _in_parallel(24, crisis)
    answers = _in_parallel(16, ordinary)
    assert all(r.status_code == 200 for r in crises + answers)
    # refusals of every kind, a refused caller's crisis answer, and paths nobody serves
    free_text = "free-text-that-must-not-show"
    refusals = {
        400: httpx.post(f"{url}/recommend", content=f"{{{free_text}", headers=program),
        401: httpx.post(f"{url}/recommend", json=CRISIS, headers={"x-api-key": "wrong" * 4}),
        422: httpx.post(f"{url}/recommend", json=profile(gender=free_text), headers=program),
    }
    assert {status: r.status_code for status, r in refusals.items()} == {
        400: 400,
        401: 401,
        422: 422,
    }
    for i in range(40):
        assert httpx.get(f"{url}/scan-{i}-{free_text}").status_code == 404
    typed = httpx.post(
        f"{url}/recommend",
        content=json.dumps(PROFILE),
        headers={**program, "Content-Type": f"application/json; note={free_text}"},
    )
    assert typed.status_code in (200, 415)

    metrics = _families(httpx.get(f"{url}/metrics").text)
    assert _total(metrics, "recommender_crisis_answers", recorded_in="audit_log") == (
        before["crisis"] + 24
    )
    assert _total(metrics, "recommender_crisis_answers", recorded_in="nowhere") == (
        before["nowhere"] + 1
    )
    # both workers serve version 1; the largest of their values is shown, once
    assert [s for s in metrics["recommender_model_version_served"] if s[2]] == [
        ("recommender_model_version_served", {"version": "1"}, 1.0)
    ]
    # per route and status, summed over the workers; unknown paths add no series
    assert (
        _total(
            metrics,
            "bentoml_service_request",
            endpoint="/recommend",
            http_response_code="200",
        )
        >= 40
    )
    for status in ("400", "401", "422"):
        found = _total(
            metrics, "bentoml_service_request", endpoint="/recommend", http_response_code=status
        )
        assert found >= 1, status
    endpoints = {labels["endpoint"] for _, labels, _ in metrics["bentoml_service_request"]}
    assert not [e for e in endpoints if "scan" in e]
    assert len(metrics["bentoml_service_request"]) <= before["series"] + 6  # the new statuses
    text = json.dumps(metrics)
    for secret in (free_text, "crisis-person", "ordinary-person", *KEYS.values()):
        assert secret not in text

    # the log: an answer's row id, in a line carrying the span its header names
    logged = log_path.read_text()
    answer = answers[0]
    request_id, span = answer.json()["request_id"], answer.headers["x-bentoml-request-id"]
    line = [x for x in logged.splitlines() if f"request {request_id}" in x]
    assert len(line) == 1 and f"span={span}" in line[0], line
    access = [x for x in logged.splitlines() if f"span={span}" in x and "status=200" in x]
    assert len(access) == 1
    assert "serving model version 1 from the registry sqlite:///" in logged
    for secret in (free_text, "crisis-person", "ordinary-person", ENV_KEYS, SALT, "wrongwrong"):
        assert secret not in logged
    for key in KEYS.values():
        assert key not in logged


# -- a PostgreSQL store ---------------------------------------------------------------------------
@pytest.fixture
def postgres_store(postgres, monkeypatch):
    """A fresh PostgreSQL audit database for the service; yields its URL."""
    url = postgres.database("operator")
    monkeypatch.setenv("RECOMMENDER_AUDIT_URL", url)
    return url


def _refuse_rows(url: str, table: str, *, trigger: bool = False) -> None:
    """Make PostgreSQL refuse new rows of ``table`` quoting them: by a check constraint (its
    own DETAIL), or by a trigger (a DBA's, say) raising an error whose DETAIL is the row."""
    import sqlalchemy as sa

    statements = [f"ALTER TABLE {table} ADD CONSTRAINT refuse CHECK (false) NOT VALID"]
    if trigger:
        statements = [
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'refused by a trigger' USING DETAIL = row_to_json(NEW)::text; "
            "END $$",
            f"CREATE TRIGGER refuse BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse()",
        ]
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))
    engine.dispose()


def test_a_postgresql_refusal_is_logged_without_the_row_it_quotes(
    postgres_store, asgi_client, caplog
):
    # PostgreSQL's own message for a row it refuses ends "DETAIL: Failing row contains (...)":
    # the whole row, whatever the client hides of its parameters. Logged as a line (an answer's
    # records) and as a traceback (an outcome's).
    program = auth("program")
    body = profile(person_id="person-who-must-not-show", ee=37, weekly_hours=71.5)
    assert asgi_client.post("/recommend", json=body, headers=program).status_code == 200
    _refuse_rows(postgres_store, "assignments")
    _refuse_rows(postgres_store, "outcomes", trigger=True)
    outcome = {
        "person_id": "person-who-must-not-show",
        "measured_at": datetime.now(timezone.utc).isoformat(),
        "arm_taken": "coaching",
        "ee_followup": 29,
        "dp_followup": 7,
        "pa_followup": 41,
    }
    with caplog.at_level(logging.INFO, logger="recommender.service"):
        refused = asgi_client.post("/recommend", json=body, headers=program)
        unrecorded = asgi_client.post("/outcomes", json={"outcomes": [outcome]}, headers=program)
    assert (refused.status_code, unrecorded.status_code) == (503, 503), unrecorded.text
    logged = _logged(caplog)
    assert 'violates check constraint "refuse"' in logged and "refused by a trigger" in logged
    assert logged.count("DETAIL: not logged (it may quote the row)") >= 2
    assert "Traceback" in logged
    for secret in ("person-who-must-not-show", "71.5", "Failing row", "physician", "coaching"):
        assert secret not in logged
