"""How ``bench.service`` measures: servers started on free loopback ports and stopped with their
process group, and the Python clients that time single requests and the load of 16
connections (httpx, and a lean ``http.client`` one); wrk's runs are in ``bench._wrk``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from bench.service_contenders import CONNECTIONS, KEY, _profile


# -- processes -----------------------------------------------------------------------------------


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _server(command: list[str], env: dict, port: int, log: Path, probe: str):
    import httpx

    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 300
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start; log:\n{log.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=2).status_code == 200:
                        break
                time.sleep(0.5)
            yield f"http://127.0.0.1:{port}"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


# -- measurements --------------------------------------------------------------------------------


_LEAN_IDLE_SECONDS = 2.0


class _LeanClient:
    """One keep-alive connection through the standard library's ``http.client``: a load
    generator that costs the shared cores about a third of httpx's CPU per request (0.5 against
    1.5 ms measured at load 5), so less of the server's latency is the client's."""

    def __init__(self, url: str, headers: dict | None = None):
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self._connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        self._last = -float("inf")

    def post(self, path: str, body: dict) -> int:
        import json

        # uvicorn closes a keep-alive connection idle for 5 s, and http.client does not notice
        # until a send fails; a connection idle for a while (between rounds) is opened anew
        # rather than a request retried, which could be answered (and audited) twice.
        if time.perf_counter() - self._last > _LEAN_IDLE_SECONDS:
            self._connection.close()  # the next request connects again
        self._connection.request("POST", path, body=json.dumps(body), headers=self._headers)
        response = self._connection.getresponse()
        response.read()
        self._last = time.perf_counter()
        return response.status

    def close(self) -> None:
        self._connection.close()


def _latencies(send, n: int) -> list[float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        send(i)
        times.append(time.perf_counter() - start)
    return times


def percentile(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def _throughput(url: str, seconds: float, *, lean: bool = False) -> tuple[float, int, list[float]]:
    """Requests per second answered by ``url`` under 16 connections, errors, latencies
    (``lean``: each connection an http.client one rather than httpx's)."""
    import httpx

    done, errors, window = [0] * CONNECTIONS, [0] * CONNECTIONS, {}
    times: list[list[float]] = [[] for _ in range(CONNECTIONS)]

    def open_window():  # run once, when every connection is open
        window["start"] = time.perf_counter()
        window["stop"] = window["start"] + seconds

    start_line = threading.Barrier(CONNECTIONS, action=open_window)

    def worker(k):
        headers = {"Authorization": f"Bearer {KEY}"}
        if lean:
            client = _LeanClient(url, headers)
            post = client.post
        else:
            client = httpx.Client(base_url=url, headers=headers, timeout=120)

            def post(path, body):
                return client.post(path, json=body).status_code

        try:
            post("/recommend", _profile(k))  # open the connection first
            start_line.wait()
            i = 0
            while time.perf_counter() < window["stop"]:
                sent = time.perf_counter()
                status = post("/recommend", _profile(k * 100_000 + i))
                times[k].append(time.perf_counter() - sent)
                if status == 200:
                    done[k] += 1
                else:
                    errors[k] += 1
                i += 1
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - window["start"]
    # the warm-up request of each connection is answered (and audited) too
    return (
        sum(done) / elapsed,
        sum(errors),
        [t for ts in times for t in ts],
        sum(done) + CONNECTIONS,
    )
