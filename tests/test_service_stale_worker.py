"""A worker that cannot load the version a /reload announced keeps serving and says so.

Found: another worker's /reload announced version 9 as the champion; this worker could not load
it (its files missing on this machine, or damaged), kept answering with version 8, and its
/readyz said a bare 200, so nobody learnt that the workers served two versions; the log said
"following a /reload failed" with a staging copy's path, not the version's missing file. And a
/reload of a champion whose files are missing answered 503, which reads as "retry later"
although no retry mends it, without naming the missing file.

/readyz stays 200 for a stale worker, by design: it answers every request with a former
champion, and a bad announcement that drained every worker behind a load balancer would leave
nothing to send even crisis requests to. Its body names both versions and why; the card's
``serving.stale`` and the log name the missing file too.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote, urlparse

import pytest

from recommender import registry
from recommender.errors import ModelFilesMissing, ModelUnreadable
from service_fixtures import (  # noqa: F401  (fixtures)
    PROFILE,
    LinearModel,
    _app,
    auth,
    service_home,
)
from test_pipeline_train import use_home
from test_registry_mlflow import register_fake

CRISIS = {"person_id": "x-1", "crisis_risk": True}
MISSING = "/srv/models/mlartifacts/models/m-9/artifacts/MLmodel"


def _files_missing(version: str = "9") -> ModelFilesMissing:
    return ModelFilesMissing(
        f"version {version} of burnout-recommender is registered, but its files are missing "
        f"({MISSING} does not exist): restore them",
        version=version,
        missing=MISSING,
    )


@pytest.fixture
def worker(service_home, monkeypatch):
    """``(client, service, clock, loads)``: the service in process at version 8, the test as
    its watcher and its clock; ``loads`` lists the versions the watcher tried to load."""
    import bentoml
    from starlette.testclient import TestClient

    from recommender.service import _reload_watcher
    from recommender.service import service as service_module
    from recommender.service._serving import Serving

    monkeypatch.setattr(Serving, "_follow_reloads", lambda self: None)
    clock = [1000.0]
    monkeypatch.setattr(_reload_watcher, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(service_module, "load_champion_model", lambda: (LinearModel(), "8"))
    loads, outcome = [], {"error": _files_missing()}

    def load_version(version):
        loads.append(version)
        if outcome["error"] is not None:
            raise outcome["error"]
        return LinearModel(), str(version)

    monkeypatch.setattr(service_module, "load_version_model", load_version)
    # The cards of versions 8 and 9, as training writes them beside the models.
    for version in ("8", "9"):
        (service_home / "cards" / version).mkdir(parents=True)
        (service_home / "cards" / version / "card.json").write_text('{"model": {}}')
        (service_home / "cards" / version / "card.html").write_text("<h1>Card</h1><nav ></nav>")
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        yield SimpleNamespace(
            client=client,
            service=bentoml.get_current_service(),
            clock=clock,
            loads=loads,
            outcome=outcome,
        )


def _stale_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "announced as the champion" in r.getMessage()]


def test_a_worker_that_cannot_load_the_announced_champion_says_so_and_keeps_answering(
    worker, caplog
):
    client, service = worker.client, worker.service
    assert client.get("/readyz").text == "\n"  # current: BentoML's own answer, as before
    service.audit.announce_reload("9", "scientist")  # another worker's /reload
    with caplog.at_level(logging.INFO, logger="recommender.service"):
        service._follow_once()

    ready = client.get("/readyz")
    assert ready.status_code == 200  # a load balancer keeps sending: every answer is given
    body = ready.json()
    assert body["ready"] is True and body["stale"] is True
    assert (body["serving_version"], body["champion_version"]) == ("8", "9")
    assert body["reason"] == "model_files_missing"
    assert "version 8" in body["warning"] and "version 9" in body["warning"]
    assert MISSING not in ready.text  # /readyz needs no key: the file is in the log and card

    [said] = _stale_lines(caplog)
    assert "version 9" in said and MISSING in said and "still serving version 8" in said

    answer = client.post("/recommend", json=PROFILE, headers=auth("program"))
    assert answer.status_code == 200 and answer.json()["model_version"] == "8"
    crisis = client.post("/recommend", json=CRISIS, headers=auth("program"))
    assert crisis.status_code == 200 and crisis.json()["safety"]["resources"]

    card = client.get("/model_card.json", headers=auth("auditor"))
    assert card.status_code == 200
    stale = card.json()["serving"]["stale"]
    assert stale["serving_version"] == "8" and stale["champion_version"] == "9"
    assert stale["reason"] == "model_files_missing" and MISSING in stale["cause"]
    page = client.get("/model_card", headers=auth("auditor"))
    assert page.status_code == 200
    assert "Not the announced champion" in page.text and MISSING in page.text


def test_a_stale_worker_tries_again_less_and_less_often_and_catches_up(worker, caplog):
    service, clock, loads = worker.service, worker.clock, worker.loads
    service.audit.announce_reload("9", "scientist")
    with caplog.at_level(logging.INFO, logger="recommender.service"):
        service._follow_once()
        assert loads == ["9"]
        clock[0] += 4.9  # reload_poll_seconds (5) not over: no download of a bad model
        service._follow_once()
        assert loads == ["9"]
        waits = []
        for _ in range(3):
            clock[0] += service._champion_wait
            service._follow_once()
            waits.append(service._champion_wait)
        assert loads == ["9"] * 4 and waits == [10.0, 20.0, 40.0]
        assert len(_stale_lines(caplog)) == 1  # said once while the cause stays the same

        # A newer /reload (the files restored, someone reloads again) is tried at once.
        worker.outcome["error"] = None
        service.audit.announce_reload("9", "scientist")
        service._follow_once()
    assert loads == ["9"] * 5
    assert service.engine.version == "9" and service.stale is None
    assert worker.client.get("/readyz").text == "\n"
    card = worker.client.get("/model_card.json", headers=auth("auditor"))
    assert card.status_code == 200 and card.json()["serving"]["stale"] is None
    page = worker.client.get("/model_card", headers=auth("auditor"))
    assert page.status_code == 200 and "Not the announced champion" not in page.text


def test_a_stale_worker_is_current_again_once_the_champion_is_its_own_version(worker):
    # A rollback announced by a /reload elsewhere: the version this worker serves again.
    service = worker.service
    service.audit.announce_reload("9", "scientist")
    service._follow_once()
    assert service.stale is not None
    service.audit.announce_reload("8", "scientist")
    service._follow_once()
    assert service.stale is None and worker.loads == ["9"]
    assert worker.client.get("/readyz").text == "\n"


def test_a_worker_not_ready_for_another_cause_says_that_first(worker):
    # Stale is a note on a ready worker; a worker that cannot record answers is not ready.
    service = worker.service
    service.audit.announce_reload("9", "scientist")
    service._follow_once()
    service.audit.close()
    service.audit = None
    assert worker.client.get("/readyz").status_code == 503


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (_files_missing("9"), MISSING),
        (ModelUnreadable("version 9 of burnout-recommender ... could not load them"), "load them"),
    ],
)
def test_a_reload_of_a_champion_whose_files_are_missing_or_damaged_is_409(
    worker, monkeypatch, error, words
):
    from recommender.service import service as service_module

    def champion():
        raise error

    monkeypatch.setattr(service_module, "load_champion_model", champion)
    answer = worker.client.post("/reload", headers=auth("scientist"))
    assert answer.status_code == 409  # no retry mends it, unlike 503's registry down
    said = answer.json()
    assert "version 9" in said["error"] and words in said["error"]
    assert said["error"].endswith("still serving version 8")
    [problem] = said["problems"]  # the refusal's body names the champion, as the message does
    assert problem["field"] == "champion" and problem["accepted"].startswith("a registered")
    if isinstance(error, ModelFilesMissing):
        assert (problem["value"], problem["message"]) == ("9", f"missing: {error.missing}")
    else:
        assert problem["value"] is None and "load them" in problem["message"]
    assert answer.headers["content-type"] == "application/json"
    after = worker.client.post("/recommend", json=PROFILE, headers=auth("program"))
    assert after.json()["model_version"] == "8"
    assert worker.client.get("/readyz").text == "\n"  # nothing was announced: not stale


def test_a_champion_whose_files_are_missing_at_start_is_named(service_home, monkeypatch):
    from starlette.testclient import TestClient

    from recommender.service import service as service_module
    from recommender.service._serving import Serving

    monkeypatch.setattr(Serving, "_follow_reloads", lambda self: None)

    def champion():
        raise _files_missing("3")

    monkeypatch.setattr(service_module, "load_champion_model", champion)
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        ready = client.get("/readyz")
        refused = client.post("/recommend", json=PROFILE, headers=auth("program"))
        crisis = client.post("/recommend", json=CRISIS, headers=auth("program"))
    assert ready.status_code == 503 and ready.json()["reasons"] == ["model_files_missing"]
    assert MISSING not in ready.text
    assert refused.status_code == 503 and MISSING in refused.json()["error"]
    assert crisis.status_code == 200 and crisis.json()["safety"]["resources"]


# -- the registry's loader names the version's own missing file ------------------------------


def _version_folder(version: str) -> Path:
    uri = registry.client().get_model_version_download_uri("burnout-recommender", version)
    return Path(unquote(urlparse(uri).path))


@pytest.mark.parametrize(
    "lost", ["the folder", "MLmodel", "python_model.pkl", "artifacts/recommendation_model.joblib"]
)
def test_a_version_with_a_file_missing_is_refused_naming_that_file(tmp_path, monkeypatch, lost):
    use_home(monkeypatch, tmp_path / "home")
    register_fake()
    folder = _version_folder("1")
    missing = folder if lost == "the folder" else folder / lost
    assert missing.exists()
    if missing.is_dir():
        shutil.rmtree(missing)
    else:
        missing.unlink()
    with pytest.raises(ModelFilesMissing) as refused:
        registry.load_model("1")
    assert refused.value.version == "1" and refused.value.missing == str(missing)
    said = str(refused.value)
    assert "version 1 of burnout-recommender" in said and f"({missing} does not exist)" in said
    assert "recommender-model-" not in said  # never the staging copy, gone by then


def test_a_damaged_file_is_unreadable_not_missing(tmp_path, monkeypatch):
    use_home(monkeypatch, tmp_path / "home")
    register_fake()
    bundle = _version_folder("1") / "python_model.pkl"
    bundle.write_bytes(bundle.read_bytes()[:100])
    with pytest.raises(ModelUnreadable) as refused:
        registry.load_model("1")
    assert not isinstance(refused.value, ModelFilesMissing)
    assert "version 1 of burnout-recommender" in str(refused.value)


def test_a_real_worker_behind_a_champion_whose_files_vanished(service_home, monkeypatch, caplog):
    # End to end on a real registry: version 1 served, version 2 registered and announced by
    # another worker, then its MLmodel lost on this machine.
    import bentoml
    from starlette.testclient import TestClient

    from recommender.service import service as service_module
    from recommender.service._serving import Serving

    monkeypatch.setenv("RECOMMENDER_ACTOR", "test-suite")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(Serving, "_follow_reloads", lambda self: None)
    register_fake()
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        service = bentoml.get_current_service()
        assert service.engine.version == "1"
        assert register_fake().version == "2" and registry.aliases()["champion"] == "2"
        lost = _version_folder("2") / "MLmodel"
        lost.unlink()
        service.audit.announce_reload("2", "scientist")
        with caplog.at_level(logging.INFO, logger="recommender.service"):
            service._follow_once()
        body = client.get("/readyz").json()
        reload = client.post("/reload", headers=auth("scientist"))
        answer = client.post("/recommend", json=PROFILE, headers=auth("program"))
    assert body["stale"] and (body["serving_version"], body["champion_version"]) == ("1", "2")
    [said] = _stale_lines(caplog)
    assert str(lost) in said
    assert reload.status_code == 409 and str(lost) in reload.json()["error"]
    assert reload.json()["error"].endswith("still serving version 1")
    assert answer.status_code == 200 and answer.json()["model_version"] == "1"
    assert json.loads(answer.text)["recommended"]


def test_the_stale_answer_is_documented(worker):
    import jsonschema_rs

    worker.service.audit.announce_reload("9", "scientist")
    worker.service._follow_once()
    document = worker.client.get("/docs.json").json()
    answer = worker.client.get("/readyz")
    content = document["paths"]["/readyz"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"text/plain", "application/json"}  # current, and stale
    schema = {**content["application/json"]["schema"], "components": document["components"]}
    validator = jsonschema_rs.Draft202012Validator(schema)
    assert [e.message for e in validator.iter_errors(answer.json())] == []
