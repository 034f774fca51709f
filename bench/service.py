"""Service benchmark: one explained answer in process and over HTTP, under load, and in batches.

Measured on the model ``make demo`` registers (n = 20,000, ``configs/train.yaml``), in one run:

1. in process (validate, encode, predict, rank, explain, audit row committed, JSON): the median
   and 99th percentile of one ``/recommend`` answer, and a 1,000-row batch;
2. over HTTP (``recommender serve``, one worker): median and 99th percentile of one
   ``/recommend``, against the in-process median;
3. 16 keep-alive connections for ``--seconds``: requests per second, their 99th percentile,
   errors, beside a minimal FastAPI app doing the same work through the same engine;
4. one 1,000-row ``/recommend_batch`` against one ``/recommend``;
5. the service's audit rows against the answers it gave.

Run: ``.venv/bin/python -m bench.service`` (trains the demo model in a temporary folder), or
``--home models`` to serve the champion of an existing models folder (after ``make demo``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench._report import machine_line, markdown_table, median, write_section

KEY = "bench-program-key"
BATCH_ROWS = 1000
SALT = "bench-salt"
CONNECTIONS = 16


def _profile(i: int) -> dict:
    roles = ("physician", "resident", "nurse", "app")
    return {
        "person_id": f"bench-{i}",
        "age": 25 + i % 40,
        "gender": "female",
        "role": roles[i % 4],
        "specialty": "internal_medicine",
        "setting": "academic",
        "years_in_practice": float(i % 30),
        "weekly_hours": 40.0 + i % 40,
        "ee": i % 55,
        "dp": i % 31,
        "pa": i % 49,
    }


# -- the FastAPI anchor --------------------------------------------------------------------------


def create_anchor_app():
    """A minimal FastAPI app doing exactly the service's work (uvicorn --factory target)."""
    from fastapi import Body, FastAPI
    from fastapi.responses import JSONResponse

    engine = _engine(Path(os.environ["RECOMMENDER_HOME"]) / "anchor-audit.db")
    app = FastAPI()

    @app.post("/recommend")
    def recommend(payload: dict = Body(...)):
        row = engine.check_row(payload)
        return JSONResponse(engine.recommend([row], caller_role="program")[0])

    return app


def _engine(audit_path: Path | None):
    from recommender.catalog import load_catalog
    from recommender.registry import load_champion
    from recommender.service import AuditLog, RecommendationEngine, load_serve_config

    model, version = load_champion()
    return RecommendationEngine(
        model,
        version,
        catalog=load_catalog(),
        config=load_serve_config(),
        audit=AuditLog(f"sqlite:///{audit_path}" if audit_path else "sqlite://", salt=SALT),
    )


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


def _throughput(url: str, seconds: float) -> tuple[float, int, list[float]]:
    """Requests per second answered by ``url`` under 16 connections, errors, latencies."""
    import httpx

    done, errors, window = [0] * CONNECTIONS, [0] * CONNECTIONS, {}
    times: list[list[float]] = [[] for _ in range(CONNECTIONS)]

    def open_window():  # run once, when every connection is open
        window["start"] = time.perf_counter()
        window["stop"] = window["start"] + seconds

    start_line = threading.Barrier(CONNECTIONS, action=open_window)

    def worker(k):
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120
        ) as client:
            client.post("/recommend", json=_profile(k))  # open the connection first
            start_line.wait()
            i = 0
            while time.perf_counter() < window["stop"]:
                sent = time.perf_counter()
                response = client.post("/recommend", json=_profile(k * 100_000 + i))
                times[k].append(time.perf_counter() - sent)
                if response.status_code == 200:
                    done[k] += 1
                else:
                    errors[k] += 1
                i += 1

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


def run(home: Path, *, requests: int, seconds: float, repeats: int) -> dict:
    import httpx

    from recommender.service import AuditLog

    env = {
        **os.environ,
        "RECOMMENDER_HOME": str(home),
        "BENTOML_HOME": str(home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "RECOMMENDER_API_KEYS": f"program={KEY}",
        "RECOMMENDER_AUDIT_SALT": SALT,
    }
    os.environ.update({k: env[k] for k in ("RECOMMENDER_HOME", "RECOMMENDER_AUDIT_SALT")})
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    engine = _engine(home / "in-process-audit.db")
    # the same work with the audit store in memory: what the answer costs without the commit's
    # fsync (on this shared virtual disk a few ms, the floor of any durable answer)
    memory_engine = _engine(None)
    # as the service does once its model is loaded: long-lived objects out of the collector
    gc.collect()
    gc.freeze()

    def in_process(i):
        row = engine.check_row(_profile(i))
        json.dumps(engine.recommend([row], caller_role="program")[0])

    def in_memory(i):
        row = memory_engine.check_row(_profile(i))
        json.dumps(memory_engine.recommend([row], caller_role="program")[0])

    batch_body = {"profiles": [_profile(i) for i in range(BATCH_ROWS)]}

    def in_process_batch(_):
        rows, _, _ = engine.check_rows(batch_body["profiles"])
        json.dumps(engine.recommend(rows, caller_role="program", compact=True))

    service_audit = AuditLog(f"sqlite:///{home / 'audit.db'}", salt=SALT)
    audit_before = service_audit.count()
    answers = 0

    bento_port, anchor_port = _free_port(), _free_port()
    bento_cmd = [
        sys.executable,
        "-m",
        "recommender",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(bento_port),
    ]
    anchor_cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "bench.service:create_anchor_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(anchor_port),
        "--log-level",
        "warning",
    ]
    load_start = os.getloadavg()[0]
    results = {
        "in_process": [],
        "in_memory": [],
        "in_process_batch": [],
        "http": [],
        "bento_rps": [],
        "bento_load": [],
        "anchor_rps": [],
        "anchor_load": [],
        "batch": [],
        "single": [],
        "errors": 0,
    }
    with (
        _server(bento_cmd, env, bento_port, home / "bench-bentoml.log", "/readyz") as bento,
        _server(anchor_cmd, env, anchor_port, home / "bench-fastapi.log", "/docs") as anchor,
    ):
        client = httpx.Client(
            base_url=bento, headers={"Authorization": f"Bearer {KEY}"}, timeout=300
        )

        def single(i):
            nonlocal answers
            client.post("/recommend", json=_profile(i)).raise_for_status()
            answers += 1

        def batch(_):
            nonlocal answers
            client.post("/recommend_batch", json=batch_body).raise_for_status()
            answers += BATCH_ROWS

        for warm in range(20):
            in_process(warm)
            single(warm)
        in_process_batch(0)
        batch(0)
        for _ in range(repeats):
            # Alternate the contenders so drift in the machine's load hits both alike.
            results["in_process"].extend(_latencies(in_process, requests))
            results["in_memory"].extend(_latencies(in_memory, requests))
            results["http"].extend(_latencies(single, requests))
            results["in_process_batch"].extend(_latencies(in_process_batch, 3))
            rps, errors, times, answered = _throughput(bento, seconds)
            results["bento_rps"].append(rps)
            results["bento_load"].extend(times)
            results["errors"] += errors
            answers += answered
            rps, errors, times, _ = _throughput(anchor, seconds)
            results["anchor_rps"].append(rps)
            results["anchor_load"].extend(times)
            results["errors"] += errors
            # Batch and single requests interleaved, so both see the same machine.
            for _ in range(3):
                results["single"].extend(_latencies(single, 5))
                results["batch"].extend(_latencies(batch, 1))
        client.close()
    results["load"] = (load_start, os.getloadavg()[0])
    results["answers"] = answers
    results["audit_rows"] = service_audit.count() - audit_before
    service_audit.close()
    return results


def report(results: dict, command: str, model_note: str) -> str:
    ms = 1e3
    in_p50, in_p99 = median(results["in_process"]), percentile(results["in_process"], 99)
    http_p50, http_p99 = median(results["http"]), percentile(results["http"], 99)
    in_batch = median(results["in_process_batch"])
    rps, load_p99 = median(results["bento_rps"]), percentile(results["bento_load"], 99)
    anchor_rps, anchor_p99 = median(results["anchor_rps"]), percentile(results["anchor_load"], 99)
    batch_ratio = median(results["batch"]) / median(results["single"])

    def met(ok):
        return "yes" if ok else "no"

    rows = [
        {
            "measure": "one explained answer in process, p50 / p99 (ms)",
            "measured": f"{in_p50 * ms:.2f} / {in_p99 * ms:.2f}",
            "target": "p50 <= 3",
            "met": met(in_p50 * ms <= 3),
        },
        {
            "measure": "the same with the audit store in memory (no fsync), p50 / p99 (ms)",
            "measured": f"{median(results['in_memory']) * ms:.2f} / "
            f"{percentile(results['in_memory'], 99) * ms:.2f}",
            "target": "",
            "met": "",
        },
        {
            "measure": f"{BATCH_ROWS:,}-row batch in process (ms)",
            "measured": f"{in_batch * ms:.0f}",
            "target": "<= 150",
            "met": met(in_batch * ms <= 150),
        },
        {
            "measure": "/recommend over HTTP, p50 / p99 (ms)",
            "measured": f"{http_p50 * ms:.2f} / {http_p99 * ms:.2f}",
            "target": f"p50 <= 2x in process ({http_p50 / in_p50:.2f}x)",
            "met": met(http_p50 <= 2 * in_p50),
        },
        {
            "measure": f"{CONNECTIONS} connections: req/s, p99 (ms)",
            "measured": f"{rps:.0f}, {load_p99 * ms:.0f}",
            "target": ">= 150 req/s, p99 <= 100",
            "met": met(rps >= 150 and load_p99 * ms <= 100),
        },
        {
            "measure": "same load on a minimal FastAPI app (anchor): req/s, p99 (ms)",
            "measured": f"{anchor_rps:.0f}, {anchor_p99 * ms:.0f}",
            "target": "",
            "met": "",
        },
        {
            "measure": "errors during the load rounds",
            "measured": str(results["errors"]),
            "target": "0",
            "met": met(results["errors"] == 0),
        },
        {
            "measure": f"{BATCH_ROWS:,}-row /recommend_batch vs one /recommend (ms)",
            "measured": f"{median(results['batch']) * ms:.0f} vs {median(results['single']) * ms:.1f}"
            f" ({batch_ratio:.1f}x)",
            "target": "<= 10x",
            "met": met(batch_ratio <= 10),
        },
        {
            "measure": "audit rows written vs answers given (service)",
            "measured": f"{results['audit_rows']:,} vs {results['answers']:,}",
            "target": "equal",
            "met": met(results["audit_rows"] == results["answers"]),
        },
    ]
    return "\n".join(
        [
            "## Service: one explained answer in process, over HTTP, under load and in batches",
            "",
            f"`{command}`",
            "",
            machine_line() + f"; load average (1 min) {results['load'][0]:.1f} at start, "
            f"{results['load'][1]:.1f} at end (the two cores are shared with other sessions).",
            "",
            f"Model: {model_note}. {len(results['in_process'])} answers in process and "
            f"{len(results['http'])} over HTTP (p50, p99), {len(results['bento_rps'])} load rounds "
            f"(median req/s; p99 over all their requests), {len(results['batch'])} batches "
            f"interleaved with {len(results['single'])} single requests, alternating.",
            "",
            markdown_table(rows, ["measure", "measured", "target", "met"]),
            "",
            "The same `RecommendationEngine` answers in process, in `recommender serve` and in the "
            "FastAPI anchor: validation, one encoding of the rows, one pass of the compiled model "
            "for every arm's effect and interval and the secondary outcomes, ranking, TreeSHAP "
            "contributions for the best and runner-up arms, the audit row committed in SQLite "
            "(grouped with other requests' rows under load) before the answer is returned. Both "
            "servers run one process on this shared two-core machine and the load generator "
            "(Python threads, httpx) runs on the same cores.",
        ]
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.service", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--home",
        default=None,
        help="models folder with a champion (default: train a small one in a temporary folder)",
    )
    parser.add_argument("--requests", type=int, default=100, help="requests per latency round")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per load round")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the report")
    args = parser.parse_args(argv)
    command = "python -m bench.service " + " ".join(argv if argv is not None else sys.argv[1:])
    temporary = None
    if args.home:
        home = Path(args.home).resolve()
        model_note = f"the champion of {args.home}"
    else:
        temporary = tempfile.mkdtemp(prefix="bench-service-")
        home = Path(temporary)
        os.environ["RECOMMENDER_HOME"] = str(home)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        from pipelines.train import run_training

        # configs/train.yaml as `make demo` uses it: what ships is what is measured.
        run_training(reason="service benchmark")
        model_note = (
            "the demo model: champion trained by `configs/train.yaml` (learner auto, "
            "simulated cohort n = 20,000, seed 7, default scenario)"
        )
    try:
        results = run(home, requests=args.requests, seconds=args.seconds, repeats=args.repeats)
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
    markdown = report(results, command.strip(), model_note)
    print(markdown)
    if not args.no_write:
        write_section("service", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
