"""A server's readiness is its own (tests/service_fixtures.py's wait_ready): when another server
took the port after ``free_port()`` chose it (another xdist worker's: both scan
RECOMMENDER_TEST_PORTS in the same order), that server's 200 is not taken for this one's, which
ends saying the port is in use and is started again on another port.

Python's own HTTP server stands for both: the one holding the port answers 200 on ``/``; the
one started after it says its port is in use and takes a few seconds to end, as BentoML's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlsplit

import httpx
import pytest

import service_fixtures
from service_fixtures import listens, serving


def _http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]


# As BentoML's server on a taken port: it says so, and takes a while to end (its processes stop
# first), while the port's holder answers.
_SLOW_TO_FAIL = """
import http.server, sys, time
handler = http.server.SimpleHTTPRequestHandler
try:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler)
except OSError as error:
    print(error, flush=True)
    time.sleep(3)
    sys.exit(1)
server.serve_forever()
"""


def _slow_to_fail(port: int) -> list[str]:
    return [sys.executable, "-c", _SLOW_TO_FAIL, str(port)]


@pytest.fixture
def answering_port(tmp_path):
    """A loopback port on which another process's HTTP server answers 200: ``(port, process)``."""
    with serving(
        _http_server,
        env=dict(os.environ),
        log_path=tmp_path / "other.log",
        cwd=tmp_path,
        ready_path="/",
    ) as (url, process):
        yield urlsplit(url).port, process


def test_a_200_from_the_server_that_took_the_port_is_not_this_ones_readiness(
    tmp_path, answering_port, monkeypatch
):
    taken, other = answering_port
    given = []
    free = service_fixtures.free_port

    def taken_first() -> int:
        given.append(taken if not given else free())
        return given[-1]

    monkeypatch.setattr(service_fixtures, "free_port", taken_first)
    env = dict(os.environ)
    with serving(_slow_to_fail, env=env, log_path=tmp_path / "s.log", ready_path="/") as served:
        url, process = served
        assert given[0] == taken != given[-1] and url == f"http://127.0.0.1:{given[-1]}"
        assert listens(process, given[-1]) and not listens(process, taken)
        assert httpx.get(f"{url}/", timeout=30).status_code == 200
    assert process.poll() is not None and other.poll() is None  # only its own stopped


def test_listens_names_the_holder_of_a_port_only(tmp_path, answering_port):
    port, other = answering_port
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert listens(other, port)
        assert not listens(stranger, port)
    finally:
        stranger.kill()
        stranger.wait()
