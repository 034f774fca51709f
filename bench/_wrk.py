"""wrk, the C load generator, as the benchmarks' client for one route under load.

A Python client (httpx threads) on this two-core machine spends a large share of the cores
the server needs; wrk (Debian's package, 4.1) spends little. Each connection is one wrk thread
that POSTs a rotation of JSON bodies (``_wrk.lua``) and stops itself on the answer that
reaches its deadline, so no request is in flight when the run ends: every request sent was
answered and counted, and a service's audit rows can be compared with its answers exactly.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("_wrk.lua")
MISSING = (
    "wrk, the load generator of the benchmark, is not installed: apt-get install wrk "
    "(`make bench` installs it)"
)
# wrk's own limit on each run: the threads stop themselves long before it (at their deadline).
_SLACK_SECONDS = 60


@dataclass(frozen=True)
class Load:
    """What one wrk run got: answers, errors, the window and every request's latency (s)."""

    answered: int
    succeeded: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        """Answers per second over the window (first request sent to last answer read)."""
        return self.answered / self.seconds


def wrk_binary() -> str:
    """The path of ``wrk``; a clear error naming the package when it is missing."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(MISSING)
    return found


def post_load(
    url: str,
    path: str,
    bodies: list[dict],
    *,
    connections: int,
    seconds: float,
    limit: int = 0,
    authorization: str = "",
) -> Load:
    """POST ``bodies`` to ``url + path`` from ``connections`` keep-alive connections for
    ``seconds`` (or until each connection has ``limit`` answers).

    Connection ``k`` sends the bodies ``k, k + connections, ...`` in turn. ``errors`` counts
    answers other than 2xx and wrk's socket errors (connect, read, write, timeout).
    """
    binary = wrk_binary()
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as folder:
        work = Path(folder)
        (work / "bodies").write_text("".join(json.dumps(body) + "\n" for body in bodies))
        prefix = str(work / "thread-")
        command = [
            binary,
            *("-t", str(connections), "-c", str(connections)),
            *("-d", f"{int(seconds) + _SLACK_SECONDS}s", "--timeout", "60s"),
            *("-s", str(SCRIPT), url),
            "--",
            *(str(work / "bodies"), repr(float(seconds)), str(limit), str(connections)),
            *(path, authorization, prefix),
        ]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        threads = [Path(f"{prefix}{k}") for k in range(connections)]
        # wrk sleeps its whole duration before reporting; once every thread has stopped
        # itself, SIGINT ends that sleep (wrk's own handler: it then reports as usual).
        while process.poll() is None and not all(t.exists() for t in threads):
            time.sleep(0.05)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
        summary = Path(prefix + "summary")
        if process.returncode != 0 or not summary.exists():
            raise RuntimeError(f"wrk failed ({' '.join(command)}):\n{output}")
        missing = [k for k, t in enumerate(threads) if not t.exists()]
        if missing:
            raise RuntimeError(
                f"wrk's connections {missing} did not finish within {_SLACK_SECONDS} s of their "
                f"deadline, so requests may have been left in flight:\n{output}"
            )
        requests, *socket_errors, _non_2xx, timeouts = map(int, summary.read_text().split())
        answered = succeeded = 0
        start, stop, latencies = float("inf"), 0.0, []
        for thread in threads:
            head, *times = thread.read_text().split("\n")
            n, ok, first, last = head.split()
            answered += int(n)
            succeeded += int(ok)
            start, stop = min(start, float(first)), max(stop, float(last))
            latencies.extend(float(t) for t in times if t)
    if answered != requests:
        raise RuntimeError(
            f"wrk counted {requests} answers, its connections {answered}: the count of "
            "answers (and so the audit check) would be wrong"
        )
    return Load(
        answered=answered,
        succeeded=succeeded,
        errors=answered - succeeded + sum(socket_errors) + timeouts,
        seconds=stop - start,
        latencies=latencies,
    )
