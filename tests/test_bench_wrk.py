"""bench/_wrk.py: wrk as the service benchmark's load generator counts every answer it got."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import _wrk
from bench._wrk import post_load

needs_wrk = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)


@pytest.fixture
def server():
    """A keep-alive HTTP server recording each body and Authorization header it answers;
    bodies with ``"refuse": true`` get 422."""
    seen: list[tuple[dict, str | None]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                seen.append((body, self.headers.get("Authorization")))
            self.send_response(422 if body.get("refuse") else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


@needs_wrk
def test_every_request_sent_is_answered_and_counted(server):
    url, seen = server
    load = post_load(url, "/recommend", [{"i": i} for i in range(40)], connections=4, seconds=1)
    # No request is left in flight when wrk ends: the server answered exactly what was counted.
    assert load.answered == len(seen) > 4
    assert load.succeeded == load.answered and load.errors == 0
    assert len(load.latencies) == load.answered
    # The window is the run's (its connections stop at their 1 s deadline), not wrk's own -d
    # (61 s); bounded generously, since a busy machine may answer the last requests late.
    assert 0 < load.seconds < 30 and load.rate == load.answered / load.seconds


@needs_wrk
def test_one_connection_sends_the_bodies_in_turn_with_the_key(server):
    url, seen = server
    bodies = [{"i": 0}, {"i": 1}, {"i": 2, "refuse": True}]
    load = post_load(
        url, "/x", bodies, connections=1, seconds=60, limit=7, authorization="Bearer k"
    )
    assert [body["i"] for body, _ in seen] == [0, 1, 2, 0, 1, 2, 0]
    assert {key for _, key in seen} == {"Bearer k"}
    assert (load.answered, load.succeeded, load.errors) == (7, 5, 2)


@needs_wrk
def test_connections_split_the_bodies(server):
    url, seen = server
    post_load(url, "/x", [{"i": i} for i in range(6)], connections=2, seconds=60, limit=3)
    # Connection 0 sends bodies 0, 2, 4 and connection 1 bodies 1, 3, 5: each once.
    assert sorted(body["i"] for body, _ in seen) == [0, 1, 2, 3, 4, 5]


def test_a_missing_wrk_names_the_package(monkeypatch):
    monkeypatch.setattr(_wrk.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit, match="apt-get install wrk"):
        post_load("http://127.0.0.1:9", "/x", [{}], connections=1, seconds=1)
