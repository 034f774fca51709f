"""The audit log keeps the recommended arm's DP and PA effects and bounds, as its answer showed
them (schema revision 0005), and null where the answer showed none. (A store from before the
revision: tests/test_service_migrations.py.)

Found: answers carry DP and PA effects with their intervals, but the audit record kept EE figures
alone, so an auditor reading the log could not see what else a person was told.
"""

from __future__ import annotations

import csv
import dataclasses
import io

from recommender.service import AuditLog
from recommender.service._audit_tables import SECONDARY_COLUMNS
from service_fixtures import (  # noqa: F401  (fixtures)
    AUDIT_RECORD,
    PROFILE,
    LinearModel,
    asgi_client,
    auth,
    linear_model,
    profile,
    service_home,
)


def _exported(client) -> list[dict]:
    response = client.get("/audit/export", headers=auth("auditor"))
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def _shown(answer: dict) -> tuple:
    """The recommended arm's DP and PA figures, as the answer's ranking shows them."""
    (item,) = [i for i in answer["ranking"] if i["arm"] == answer["recommended"]]
    return tuple(item[name] for name in SECONDARY_COLUMNS)


def _csv_value(text: str):
    return None if text == "" else float(text)


def test_an_answer_and_a_batch_record_the_recommended_arms_dp_and_pa_as_shown(asgi_client):
    one = asgi_client.post("/recommend", json=PROFILE, headers=auth("program"))
    assert one.status_code == 200, one.text
    batch = asgi_client.post(
        "/recommend_batch",
        json={"profiles": [profile(person_id="b-1", ee=50), profile(person_id="b-2", dp=25)]},
        headers=auth("program"),
    )
    assert batch.status_code == 200, batch.text
    answers = [one.json(), *(entry for entry in batch.json()["results"])]
    rows = _exported(asgi_client)
    assert len(rows) == 3
    by_id = {row["request_id"]: row for row in rows}
    for answer in answers:
        row = by_id[answer["request_id"]]
        assert row["recommended"] == answer["recommended"]
        shown = _shown(answer)
        assert all(value is not None for value in shown)  # the stand-in model has DP and PA
        assert tuple(_csv_value(row[name]) for name in SECONDARY_COLUMNS) == shown


def test_a_model_without_dp_or_pa_records_null_and_a_crisis_answer_none(service_home, monkeypatch):
    # As the evidence-only model: EE effects only; its answers show null DP and PA.
    from starlette.testclient import TestClient

    from recommender.service import service as service_module
    from service_fixtures import _app

    class EeOnly(LinearModel):
        def predict(self, encoded, *, alpha=0.1):
            found = super().predict(encoded, alpha=alpha)
            return dataclasses.replace(found, secondary={}, secondary_lower={}, secondary_upper={})

    monkeypatch.setattr(service_module, "load_champion_model", lambda: (EeOnly(), "8"))
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        answer = client.post("/recommend", json=PROFILE, headers=auth("program"))
        assert answer.status_code == 200, answer.text
        assert _shown(answer.json()) == (None,) * 6
        crisis = {"person_id": "c-1", "crisis_risk": True}
        assert client.post("/recommend", json=crisis, headers=auth("program")).status_code == 200
        rows = _exported(client)
    assert len(rows) == 2
    for row in rows:
        assert [row[name] for name in SECONDARY_COLUMNS] == [""] * 6
    assert rows[0]["effects"] != "{}"  # the EE figures are there all the same


def test_nan_figures_are_stored_as_null_not_as_nan(tmp_path):
    log = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", salt="s")
    nan = float("nan")
    log.append([{**AUDIT_RECORD, "dp_pa": (-1.5, -2.0, -1.0, nan, nan, nan)}])
    (row,) = log.export()
    assert [row[name] for name in SECONDARY_COLUMNS] == [-1.5, -2.0, -1.0, None, None, None]
    log.close()


def test_a_plan_line_records_no_dp_or_pa(asgi_client):
    # A plan shows EE alone: its records hold no DP or PA the plan never showed.
    plan = asgi_client.post(
        "/allocate",
        json={"profiles": [profile(person_id="a-1"), profile(person_id="a-2")]},
        headers=auth("program"),
    )
    assert plan.status_code == 200, plan.text
    rows = _exported(asgi_client)
    assert len(rows) == 2 and all(row["batch_id"].startswith("plan-") for row in rows)
    for row in rows:
        assert [row[name] for name in SECONDARY_COLUMNS] == [""] * 6
