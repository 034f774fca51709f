"""What a service left running for weeks meets: a worker killed and replaced, paths scanned.

A worker killed (SIGKILL, the out-of-memory killer) is replaced by the server; every answer
it gave before is in the audit store, and its live gauges (the version it served, its
requests in progress) leave ``/metrics`` at the next scrape instead of being shown for ever.
A path the service does not serve is answered 404 before BentoML's layers, which therefore
never counted it: it is counted under one fixed route label, ``unknown``, and logged without
the path, so a scan is visible and adds no series however many paths it tries. A SQLite
store's write-ahead log, grown by one long read or write, does not keep that size on disk.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from service_fixtures import (  # noqa: F401  (fixtures)
    AUDIT_RECORD,
    asgi_client,
    auth,
    champion_home,
    linear_model,
    profile,
    service_home,
    two_worker_server,
)

FRONT = "recommender_front_answers_total"
# What the store's write-ahead log keeps on disk once a checkpoint has restarted it.
WAL_KEPT = 16 << 20


def test_a_grown_write_ahead_log_is_cut_back_at_the_next_record(tmp_path):
    import sqlite3

    from recommender.service import AuditLog

    database = tmp_path / "audit.db"
    wal = tmp_path / "audit.db-wal"
    audit = AuditLog(f"sqlite:///{database}", salt="s")
    try:
        audit.append([AUDIT_RECORD])
        # 40 MiB written at once (as while a long read held checkpoints back): the log grows
        with sqlite3.connect(database) as other:
            other.execute("CREATE TABLE ballast (b BLOB)")
            other.execute("INSERT INTO ballast VALUES (zeroblob(40 << 20))")
        other.close()
        assert wal.stat().st_size > 40 << 20
        audit.append([{**AUDIT_RECORD, "request_id": "r-2"}])
        assert wal.stat().st_size <= WAL_KEPT
        assert {row["request_id"] for row in audit.export()} == {"r-1", "r-2"}
    finally:
        audit.close()


# A worker process as prometheus_client's multiprocess mode runs one: a live gauge set, then
# waiting for a line on its standard input (or killed).
_GAUGE_WORKER = """
import sys
import prometheus_client
gauge = prometheus_client.Gauge("served", "served", ["version"], multiprocess_mode="livemax")
gauge.labels(version=sys.argv[1]).set(1)
print("set", flush=True)
sys.stdin.readline()
"""


def _gauge_worker(folder: Path, version: str) -> subprocess.Popen:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    process = subprocess.Popen(
        [sys.executable, "-c", _GAUGE_WORKER, version],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "set"
    return process


def _served(folder: Path) -> dict:
    """The gauge's values as a scrape of ``folder`` shows them: ``{version: value}``."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    return {
        sample.labels["version"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if family.name == "served"
    }


def test_a_killed_workers_live_gauges_are_dropped_and_a_living_ones_kept(tmp_path, monkeypatch):
    # Imported before the folder is named: prometheus_client picks its kind of values at its
    # import, and this process's metrics (the in-process app's) must stay its own.
    import prometheus_client  # noqa: F401

    from recommender.service import forget_dead_workers

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    killed, living = _gauge_worker(tmp_path, "7"), _gauge_worker(tmp_path, "8")
    try:
        killed.kill()  # no exit handler runs: its file stays, as a SIGKILLed worker's does
        killed.wait(30)
        assert _served(tmp_path) == {"7": 1.0, "8": 1.0}
        assert forget_dead_workers() == [killed.pid]
        assert _served(tmp_path) == {"8": 1.0}
        assert forget_dead_workers() == []  # nothing more to drop; the living one stays
        assert _served(tmp_path) == {"8": 1.0}
    finally:
        living.communicate("\n", timeout=30)


def test_without_a_multiprocess_folder_nothing_is_dropped(monkeypatch):
    from recommender.service import forget_dead_workers

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert forget_dead_workers() == []


def _front(route: str, status: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(FRONT, {"route": route, "status": status}) or 0.0


def test_an_unknown_path_is_counted_and_logged_without_the_path(asgi_client, caplog):
    before = _front("unknown", "404")
    with caplog.at_level(logging.INFO, logger="recommender.service"):
        for path in ("/wp-login.php", "/p-000777-secret", "/.env"):
            assert asgi_client.get(path).status_code == 404
        assert asgi_client.request("BREW", "/coffee-secret").status_code == 404
    assert _front("unknown", "404") == before + 4
    lines = [r.getMessage() for r in caplog.records if "404" in r.getMessage()]
    said = "answered 404 to {} of a path the service does not serve (path not logged)"
    assert lines == [said.format("GET")] * 3 + [said.format("another method")]
    assert "secret" not in caplog.text and "BREW" not in caplog.text


# Answered before BentoML's layers, in process: (method, path, route label, status).
_PAGES = [
    ("GET", "/", "/", "200"),
    ("GET", "/favicon.ico", "/favicon.ico", "204"),
    ("GET", "/docs.json", "/docs.json", "200"),
    ("GET", "/metrics", "/metrics", "503"),  # in process: no multiprocess folder
    ("POST", "/livez", "/livez", "405"),
]


def test_the_answers_given_in_front_are_counted_by_their_route(asgi_client):
    before = [_front(route, status) for _, _, route, status in _PAGES]
    for method, path, _, status in _PAGES:
        assert asgi_client.request(method, path).status_code == int(status)
    after = [_front(route, status) for _, _, route, status in _PAGES]
    assert [b - a for a, b in zip(before, after)] == [1.0] * len(_PAGES)


# -- a real `recommender serve` with two workers --------------------------------------------------
# The session's (service_fixtures.two_worker_server): (url, process, store URL, log path), the
# audit store and the log its own.


def _workers(process) -> set[int]:
    """The process ids of the server's running workers (a killed one not yet reaped is not)."""
    import psutil

    found = set()
    for child in psutil.Process(process.pid).children(recursive=True):
        try:
            if "_bentoml_impl.worker.service" in " ".join(child.cmdline()):
                found.add(child.pid)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            pass
    return found


def _metrics_folder(worker: int) -> Path:
    """Where a worker writes its metrics: the folder BentoML gave it (in the run's BentoML home,
    which `recommender serve` puts in /dev/shm when it can)."""
    import psutil

    return Path(psutil.Process(worker).environ()["PROMETHEUS_MULTIPROC_DIR"])


def _scrape(url: str) -> dict:
    """``{(name, frozenset(labels)): value}`` of every sample ``/metrics`` shows."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=30).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.slow
@pytest.mark.server
def test_scanned_paths_are_counted_by_both_workers_under_one_label(two_worker_server):
    url, _, _, log_path = two_worker_server
    before = _scrape(url)
    # a connection each, so that both workers answer some
    for i in range(30):
        assert httpx.get(f"{url}/scan-{i}-p-000777-secret").status_code == 404
    after = _scrape(url)
    counted = _value(after, FRONT, route="unknown", status="404")
    assert counted == _value(before, FRONT, route="unknown", status="404") + 30
    assert not [key for key in after if "scan" in str(key) or "secret" in str(key)]
    assert len(after) <= len(before) + 1  # the unknown route's series, if it was not there
    logged = log_path.read_text()
    said = "answered 404 to GET of a path the service does not serve (path not logged)"
    assert logged.count(said) >= 30
    assert "secret" not in logged


def _post_until_stopped(url: str, answered: list, failures: list, stop: threading.Event) -> None:
    """Post /recommend on one keep-alive connection until ``stop``; the request ids of the
    200 answers in ``answered``, anything else in ``failures``."""
    with httpx.Client(base_url=url, headers=auth("program"), timeout=60) as client:
        i = 0
        while not stop.is_set():
            i += 1
            body = profile(person_id=f"kill-{id(answered)}-{i}")
            try:
                response = client.post("/recommend", json=body)
            except httpx.TransportError as error:
                failures.append(type(error).__name__)
                continue
            if response.status_code == 200:
                answered.append(response.json()["request_id"])
            else:
                failures.append(response.status_code)


def _wait_for(condition, what: str, seconds: float = 120.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds:.0f} s")


@pytest.mark.slow
@pytest.mark.server
def test_a_killed_worker_is_replaced_its_answers_kept_and_its_gauges_dropped(two_worker_server):
    from recommender.service import AuditLog

    url, process, store, _ = two_worker_server
    first = _workers(process)
    assert len(first) == 2
    folder = _metrics_folder(min(first))
    threads, stop = 8, threading.Event()
    answered, failures = [[] for _ in range(threads)], []
    load = [
        threading.Thread(target=_post_until_stopped, args=(url, answered[k], failures, stop))
        for k in range(threads)
    ]
    for thread in load:
        thread.start()
    try:
        _wait_for(lambda: sum(map(len, answered)) >= 100, "100 answers before the kill")
        killed = min(first)
        os.kill(killed, signal.SIGKILL)
        replaced = _wait_for(
            lambda: (found := _workers(process)) != first and len(found) == 2 and found,
            "a worker in place of the killed one",
        )
        (new,) = replaced - first
        # the replacement has loaded the model and says which version it serves
        _wait_for(lambda: list(folder.glob(f"gauge_livemax_{new}.db")), "the new worker's gauge")
        count = sum(map(len, answered))
        _wait_for(lambda: sum(map(len, answered)) >= count + 100, "100 answers after it")
    finally:
        stop.set()
        for thread in load:
            thread.join(120)

    # A request the killed worker held got no answer (a broken connection), never an error
    # status; at most one per connection.
    assert all(isinstance(f, str) for f in failures), failures
    assert len(failures) <= threads, failures
    given = {request_id for answers in answered for request_id in answers}
    audit = AuditLog(store, salt=None)
    recorded = {row["request_id"] for row in audit.export()}
    audit.close()
    assert given <= recorded

    samples = _scrape(url)
    assert not list(folder.glob(f"gauge_live*_{killed}.db"))
    for pid in replaced:
        assert list(folder.glob(f"gauge_livemax_{pid}.db")), pid
    assert _value(samples, "recommender_model_version_served", version="1") == 1
    # the killed worker's requests in flight are no longer counted as in progress
    in_progress = sum(
        value
        for (name, labels), value in samples.items()
        if name == "bentoml_service_request_in_progress" and ("endpoint", "/metrics") not in labels
    )
    assert in_progress == 0
    # the server serves on with both workers
    response = httpx.post(f"{url}/recommend", json=profile(), headers=auth("program"))
    assert response.status_code == 200, response.text
