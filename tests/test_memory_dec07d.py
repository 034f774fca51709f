"""A worker keeps nothing of the requests it has answered.

Soaked for minutes with mixed traffic (new and repeated person ids, batches, outcomes, crisis
flags, refused requests, /metrics scrapes), a real ``recommender serve`` worker's resident
memory rose while its thread pool started threads and glibc gave each its own malloc arena,
then stayed flat, its Python heap flat throughout (the "worker RSS creep" carried item). This
pins what a change could break: more requests, each with a new person id and request id, leave
no more objects alive in the app, from the front door to the audit writer (BentoML's timeout
layer once kept every request's objects for its 120 s timeout: ``_deadline.py``).
"""

import gc
import logging
import weakref

from service_fixtures import asgi_client, linear_model, service_home  # noqa: F401  (fixtures)
from service_fixtures import auth, outcome, profile

# Distinct profiles the requests cycle through (roles, scores and hours varied).
_PROFILES = [
    {
        "role": ("physician", "resident", "nurse", "app")[i % 4],
        "ee": 5 + (i * 7) % 50,
        "dp": (i * 5) % 31,
        "pa": 10 + (i * 3) % 39,
        "weekly_hours": 35.0 + (i * 11) % 40,
    }
    for i in range(40)
]
# Requests answered before measuring (pools, caches and lazily built parts fill), requests in
# the measured round, and the most objects they may leave alive: one a request. Keeping a
# request's objects costs about twenty a request (BentoML's timeout layer in place of Deadline:
# about 8,000 here); the app as it is leaves a few (objects of the last requests).
_WARM_UP = 200
_REQUESTS = 400
_BOUND = _REQUESTS


def _send(client, n: int, start: int) -> dict[tuple[str, int], int]:
    """``n`` requests: half /recommend with a new person id, one in ten each a batch of 5, a
    crisis flag, a refused body, a repeated person id and an outcome of a new person. Returns
    answers by (kind, status)."""
    statuses: dict[tuple[str, int], int] = {}
    program = auth("program")
    for k in range(start, start + n):
        shape = _PROFILES[k % len(_PROFILES)]
        kind = ("recommend", "batch", "crisis", "refused", "repeated", "outcome")[
            max(k % 10 - 4, 0)
        ]
        if kind == "batch":
            rows = [profile(person_id=f"b-{k}-{j}", **_PROFILES[(k + j) % 40]) for j in range(5)]
            response = client.post("/recommend_batch", json={"profiles": rows}, headers=program)
        elif kind == "crisis":
            body = {"person_id": f"c-{k}", "crisis_risk": True}
            response = client.post("/recommend", json=body, headers=program)
        elif kind == "outcome":
            body = {"outcomes": [outcome(f"p-{k - 5}")]}  # served five requests before
            response = client.post("/outcomes", json=body, headers=program)
        elif kind == "refused":
            body = profile(person_id=f"x-{k}", **{**shape, "ee": 999})
            response = client.post("/recommend", json=body, headers=program)
        else:
            person = f"rep-{k % 7}" if kind == "repeated" else f"p-{k}"
            response = client.post(
                "/recommend", json=profile(person_id=person, **shape), headers=program
            )
        statuses[(kind, response.status_code)] = statuses.get((kind, response.status_code), 0) + 1
    return statuses


def _objects_alive() -> int:
    """Objects the garbage collector tracks, after a collection, but weak references whose
    object is gone: SQLite's driver keeps one per cursor and drops them every 200 cursors of a
    connection (a few hundred come and go)."""
    gc.collect()
    return sum(1 for o in gc.get_objects() if not (type(o) is weakref.ref and o() is None))


def test_answering_many_people_keeps_nothing_of_them(asgi_client, caplog):
    # Not the answers' log lines: pytest keeps every record it captures.
    caplog.set_level(logging.WARNING, logger="recommender.service")
    _send(asgi_client, _WARM_UP, 0)  # warm-up: pools, caches, lazily built parts
    before = _objects_alive()
    statuses = _send(asgi_client, _REQUESTS, _WARM_UP)
    grown = _objects_alive() - before
    assert statuses == {
        ("recommend", 200): _REQUESTS // 2,
        ("batch", 200): _REQUESTS // 10,
        ("crisis", 200): _REQUESTS // 10,
        ("refused", 422): _REQUESTS // 10,
        ("repeated", 200): _REQUESTS // 10,
        ("outcome", 200): _REQUESTS // 10,
    }
    assert grown < _BOUND, (
        f"{_REQUESTS} requests left {grown:,} more objects alive (at most {_BOUND:,})"
    )
