"""The champion changing while the service answers: one model per answer, the version that
answered in its audit records, and no worker back on an older model after its /reload returned.

Each swap is made to land at the one point of a request where it used to do harm (a hook runs
the reload there, or a lock shows that the watcher waits), so that no test depends on timing.
"""

from __future__ import annotations

import threading

import pytest
from service_fixtures import PROFILE, LinearModel, _app, auth, profile
from service_fixtures import asgi_client, linear_model, service_home  # noqa: F401  (fixtures)

# The stand-in models' versions: "7" served at start, "8" the champion a /reload brings.
NEWER = LinearModel(base={"coaching": -9.0, "mindfulness": -1.0}, weights={})


def _service():
    import bentoml

    return bentoml.get_current_service()


def _cohort(flagged: int) -> list[dict]:
    return [
        profile(person_id=f"s-{i}", ee=20 + i, crisis_risk=True)
        if i == flagged
        else profile(person_id=f"s-{i}", ee=20 + i)
        for i in range(4)
    ]


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/recommend_batch", {"profiles": _cohort(flagged=1)}),
        ("/allocate", {"profiles": _cohort(flagged=1), "budget": 5000.0}),
    ],
)
def test_a_reload_during_a_batch_leaves_its_crisis_rows_on_the_model_that_answers(
    asgi_client, monkeypatch, route, body
):
    # Found: a batch or plan read the served model once for its ranked rows and again for its
    # crisis rows, so a /reload in between answered one request with two models, and the audit
    # log recorded the crisis row under a version that answered nothing else of it.
    from recommender.service import service as service_module
    from recommender.service import _refused

    monkeypatch.setattr(service_module, "load_champion_model", lambda: (NEWER, "8"))
    service = _service()
    flagged = _refused.crisis_flagged
    reloads = []

    def reload_first(raw):  # a /reload lands as the crisis rows are picked out
        if not reloads:
            reloads.append(service._reload("scientist"))
        return flagged(raw)

    monkeypatch.setattr(_refused, "crisis_flagged", reload_first)
    answer = asgi_client.post(route, json=body, headers=auth("program"))
    assert reloads and reloads[0].status_code == 200 and service.engine.version == "8"
    assert answer.status_code == 200, answer.text
    answered = answer.json()
    assert answered["model_version"] == "7"
    batch_id = answered.get("batch_id") or answered["plan_id"]
    records = [r for r in service.audit.export() if r["batch_id"] == batch_id]
    assert len(records) == 4
    assert {r["model_version"] for r in records} == {"7"}
    crisis = [r for r in records if r["safety_level"] == "crisis"]
    assert len(crisis) == 1
    # A batch's every answer names its version; a plan's lines name none (its own is above).
    assert {result["model_version"] for result in answered.get("results", [])} <= {"7"}


class _WatchedLock:
    """The service's reload lock, saying when the thread named ``waiter`` asks for it."""

    def __init__(self, lock, waiter: str):
        self._lock, self._waiter = lock, waiter
        self.asked = threading.Event()

    def __enter__(self):
        if threading.current_thread().name == self._waiter:
            self.asked.set()
        return self._lock.__enter__()

    def __exit__(self, *exc):
        return self._lock.__exit__(*exc)


def test_the_watcher_never_puts_back_an_older_version_after_this_workers_reload(
    asgi_client, monkeypatch, linear_model
):
    # Found: the watcher read another worker's announcement (version 8), then waited for the
    # reload lock a /reload of this worker held while loading the champion (version 9); once
    # the /reload had swapped in 9, announced it and answered "model_version": "9", the
    # watcher loaded 8 and served it until its next poll.
    from recommender.service import service as service_module

    service = _service()
    service._stopping.set()  # the service's own watcher stops; this test runs its turns
    newest = LinearModel(base={"coaching": -5.0, "mindfulness": -1.0}, weights={})
    loading, release = threading.Event(), threading.Event()

    def champion():  # the /reload's load, held until the watcher waits for the lock
        loading.set()
        assert release.wait(30)
        return newest, "9"

    monkeypatch.setattr(service_module, "load_champion_model", champion)
    monkeypatch.setattr(service_module, "load_version_model", lambda v: (NEWER, str(v)))
    service.audit.announce_reload("8", "scientist")  # another worker's /reload, not followed yet
    lock = _WatchedLock(service._reload_lock, waiter="watcher-turn")
    monkeypatch.setattr(service, "_reload_lock", lock)

    answers = {}
    reloader = threading.Thread(
        target=lambda: answers.update(reload=service._reload("scientist")), name="reload"
    )
    reloader.start()
    assert loading.wait(30)
    watcher = threading.Thread(target=service._follow_once, name="watcher-turn")
    watcher.start()
    assert lock.asked.wait(30)
    release.set()
    reloader.join(30)
    watcher.join(30)
    assert not reloader.is_alive() and not watcher.is_alive()
    assert answers["reload"].status_code == 200
    assert b'"model_version":"9"' in answers["reload"].body
    after = asgi_client.post("/recommend", json=PROFILE, headers=auth("program"))
    assert after.json()["model_version"] == "9"
    service._follow_once()  # and the next turn leaves it there
    assert service.engine.version == "9"


def test_a_champion_loaded_during_a_batch_refused_for_want_of_one_still_says_why(
    service_home, monkeypatch
):
    # Found: a batch that read no model was refused with the cause read after a champion had
    # loaded meanwhile, which had cleared it ("None; only crisis answers can be given ..."),
    # and its crisis rows named the version it was refused for want of.
    from starlette.testclient import TestClient

    from recommender.service import _refused
    from recommender.service import service as service_module

    champion = {}

    def load():
        if not champion:
            raise OSError("the registry is down")
        return champion["model"], "3"

    monkeypatch.setattr(service_module, "load_champion_model", load)
    with TestClient(_app(service_module), raise_server_exceptions=False) as client:
        service = _service()
        service._stopping.set()  # no retry of the service's own meanwhile
        flagged = _refused.crisis_flagged

        def champion_arrives(raw):
            if not champion:
                champion["model"] = LinearModel()
                assert service._reload("scientist").status_code == 200
            return flagged(raw)

        monkeypatch.setattr(_refused, "crisis_flagged", champion_arrives)
        answer = client.post(
            "/recommend_batch", json={"profiles": _cohort(flagged=1)}, headers=auth("program")
        )
        assert service.engine.version == "3"
    assert answer.status_code == 503
    body = answer.json()
    assert body["error"].startswith("no model was loaded when this request arrived; only crisis")
    [crisis] = body["crisis_results"]
    assert crisis["index"] == 1 and crisis["answer"]["safety"]["resources"]
    assert crisis["answer"]["model_version"] is None
