"""The server tests' ports (tests/service_fixtures.py): ``free_port()`` releases the port it finds
before the server binds it, and on a busy CI machine another process (a client's outgoing
connection, another test's server) may take it meanwhile; the server then ends with "address
already in use" and the test fails for nothing the service did. :func:`serving` starts such a server again on another
port; any other failure to start is raised at once with the server's log. The tests' PostgreSQL
cluster (tests/pg_cluster.py) chooses its port the same way, and starts on another likewise.

A port held by a listening socket here stands for the one taken; Python's own HTTP server
stands for a server that says so as BentoML does (``[Errno 98] Address already in use``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys

import httpx
import pytest

import service_fixtures
from service_fixtures import running_server, serving


@pytest.fixture
def taken_port():
    """A loopback port another process holds (a listening socket). It closes each connection
    it is sent at once, as a server that does not speak HTTP would: a probe of the port (the
    wait for the server's readiness) is answered by a closed connection, not held for its
    whole timeout (2 s a try) by a handshake nobody accepts."""
    import threading

    stop = threading.Event()
    with contextlib.closing(socket.socket()) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(8)
        holder.settimeout(0.1)

        def close_each_connection() -> None:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    holder.accept()[0].close()

        closer = threading.Thread(target=close_each_connection, daemon=True)
        closer.start()
        try:
            yield holder.getsockname()[1]
        finally:
            stop.set()
            closer.join(10)


@pytest.fixture
def ports(monkeypatch):
    """``ports(first, ...)``: ``free_port()`` gives these ports first, then free ones; returns
    the list of ports it gave."""
    given = []
    free = service_fixtures.free_port

    def plan(*first: int) -> list[int]:
        queue = list(first)

        def next_port() -> int:
            given.append(queue.pop(0) if queue else free())
            return given[-1]

        monkeypatch.setattr(service_fixtures, "free_port", next_port)
        return given

    return plan


def _http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]


def test_a_server_whose_port_was_taken_is_started_on_another(tmp_path, taken_port, ports):
    given = ports(taken_port)
    log = tmp_path / "serve.log"
    server = serving(_http_server, env=dict(os.environ), log_path=log, cwd=tmp_path, ready_path="/")
    with server as (url, process):
        assert len(given) == 2 and given[0] == taken_port != given[1]
        assert url == f"http://127.0.0.1:{given[1]}"
        assert httpx.get(f"{url}/", timeout=30).status_code == 200
    assert process.poll() is not None  # stopped afterwards


def test_a_port_taken_every_time_is_given_up_on_naming_it(tmp_path, taken_port, ports):
    ports(*[taken_port] * 10)
    with pytest.raises(RuntimeError, match="5 free ports in a row were taken"):
        with serving(_http_server, env=dict(os.environ), log_path=tmp_path / "s.log"):
            pass


def test_a_server_that_fails_otherwise_is_not_started_again(tmp_path, ports):
    given = ports()

    def failing(port: int) -> list[str]:
        return [sys.executable, "-c", "print('no such catalog file'); raise SystemExit(3)"]

    with pytest.raises(RuntimeError) as caught:
        with serving(failing, env=dict(os.environ), log_path=tmp_path / "s.log"):
            pass
    assert "exited with code 3" in str(caught.value)
    assert "no such catalog file" in str(caught.value)  # with its log
    assert len(given) == 1


@pytest.mark.slow
@pytest.mark.server
def test_recommender_serve_on_a_taken_port_is_started_on_another(tmp_path, taken_port, ports):
    # `recommender serve` checks its port itself before it starts BentoML, in its own words.
    given = ports(taken_port)
    home = tmp_path / "home"
    home.mkdir()
    log = tmp_path / "serve.log"
    with running_server(home, log_path=log, ready_path="/livez") as url:
        assert len(given) == 2 and url == f"http://127.0.0.1:{given[1]}"
        assert httpx.get(f"{url}/livez", timeout=30).status_code == 200


def test_a_postgres_cluster_whose_port_was_taken_starts_on_another(postgres, taken_port, ports):
    # The session's cluster (`postgres`) only to find the server binaries, or skip without them.
    import psycopg

    from pg_cluster import Cluster

    given = ports(taken_port)
    cluster = Cluster(postgres.binaries)
    try:
        assert len(given) == 2 and cluster.port == given[1] != taken_port
        with psycopg.connect(
            f"host=127.0.0.1 port={cluster.port} user=recommender dbname=postgres"
        ):
            pass
    finally:
        cluster.stop()
