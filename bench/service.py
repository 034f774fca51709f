"""Service benchmark: what HTTP and BentoML cost on top of the recommendation itself.

Three comparisons, each against an anchor measured in the same run:

1. median ``/recommend`` latency over HTTP (``recommender serve``) against the same work done in
   process (validate, score, rank, explain, audit, encode JSON): target at most 3x;
2. throughput with 16 keep-alive connections against a minimal FastAPI app (uvicorn, one
   process) doing the same work through the same engine: target at least 0.6x;
3. one 1,000-row ``/recommend_batch`` against one single ``/recommend``: target at most 10x.

Run: ``.venv/bin/python -m bench.service`` (trains a small champion in a temporary folder), or
``--home models`` to serve the champion of an existing models folder (after ``make demo``).
"""

from __future__ import annotations

import argparse
import contextlib
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
SALT = "bench-salt"
CONNECTIONS = 16


def _profile(i: int) -> dict:
    roles = ("physician", "resident", "nurse", "app")
    return {"person_id": f"bench-{i}", "age": 25 + i % 40, "gender": "female",
            "role": roles[i % 4], "specialty": "internal_medicine", "setting": "academic",
            "years_in_practice": float(i % 30), "weekly_hours": 40.0 + i % 40,
            "ee": i % 55, "dp": i % 31, "pa": i % 49}


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


def _engine(audit_path: Path):
    from recommender.catalog import load_catalog
    from recommender.registry import load_champion
    from recommender.service import AuditLog, RecommendationEngine, load_serve_config

    model, version = load_champion()
    return RecommendationEngine(model, version, catalog=load_catalog(),
                                config=load_serve_config(),
                                audit=AuditLog(f"sqlite:///{audit_path}", salt=SALT))


# -- processes -----------------------------------------------------------------------------------

def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _server(command: list[str], env: dict, port: int, log: Path, probe: str):
    import httpx

    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
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


def _throughput(url: str, seconds: float) -> tuple[float, int]:
    """Requests answered per second by ``url`` under 16 connections; and the error count."""
    import httpx

    done, errors, window = [0] * CONNECTIONS, [0] * CONNECTIONS, {}

    def open_window():  # run once, when every connection is open
        window["start"] = time.perf_counter()
        window["stop"] = window["start"] + seconds

    start_line = threading.Barrier(CONNECTIONS, action=open_window)

    def worker(k):
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"},
                          timeout=120) as client:
            client.post("/recommend", json=_profile(k))  # open the connection first
            start_line.wait()
            i = 0
            while time.perf_counter() < window["stop"]:
                response = client.post("/recommend", json=_profile(k * 100_000 + i))
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
    return sum(done) / (time.perf_counter() - window["start"]), sum(errors)


def run(home: Path, *, requests: int, seconds: float, repeats: int) -> dict:
    import httpx

    env = {**os.environ, "RECOMMENDER_HOME": str(home), "BENTOML_HOME": str(home / "bentoml"),
           "BENTOML_DO_NOT_TRACK": "True", "RECOMMENDER_API_KEYS": f"program={KEY}",
           "RECOMMENDER_AUDIT_SALT": SALT}
    os.environ.update({k: env[k] for k in ("RECOMMENDER_HOME", "RECOMMENDER_AUDIT_SALT")})
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    engine = _engine(home / "in-process-audit.db")

    def in_process(i):
        row = engine.check_row(_profile(i))
        json.dumps(engine.recommend([row], caller_role="program")[0])

    bento_port, anchor_port = _free_port(), _free_port()
    bento_cmd = [sys.executable, "-m", "recommender", "serve", "--host", "127.0.0.1",
                 "--port", str(bento_port)]
    anchor_cmd = [sys.executable, "-m", "uvicorn", "--factory", "bench.service:create_anchor_app",
                  "--host", "127.0.0.1", "--port", str(anchor_port), "--log-level", "warning"]
    results = {"in_process": [], "http": [], "bento_rps": [], "anchor_rps": [], "batch": [],
               "single": [], "errors": 0}
    with _server(bento_cmd, env, bento_port, home / "bench-bentoml.log", "/readyz") as bento, \
            _server(anchor_cmd, env, anchor_port, home / "bench-fastapi.log", "/docs") as anchor:
        client = httpx.Client(base_url=bento, headers={"Authorization": f"Bearer {KEY}"},
                              timeout=300)
        batch_body = {"profiles": [_profile(i) for i in range(1000)]}
        for warm in range(20):
            in_process(warm)
            client.post("/recommend", json=_profile(warm))
        client.post("/recommend_batch", json=batch_body)
        for _ in range(repeats):
            # Alternate the contenders so drift in the machine's load hits both alike.
            results["in_process"].append(median(_latencies(in_process, requests)))
            results["http"].append(median(_latencies(
                lambda i: client.post("/recommend", json=_profile(i)).raise_for_status(),
                requests)))
            rps, errors = _throughput(bento, seconds)
            results["bento_rps"].append(rps)
            results["errors"] += errors
            rps, errors = _throughput(anchor, seconds)
            results["anchor_rps"].append(rps)
            results["errors"] += errors
            # Batch and single requests interleaved, so both see the same machine.
            for _ in range(3):
                results["single"].extend(_latencies(
                    lambda i: client.post("/recommend", json=_profile(i)).raise_for_status(), 5))
                results["batch"].extend(_latencies(
                    lambda i: client.post("/recommend_batch", json=batch_body).raise_for_status(),
                    1))
        client.close()
    return results


def report(results: dict, command: str, model_note: str) -> str:
    latency_ratio = median(results["http"]) / median(results["in_process"])
    throughput_ratio = median(results["bento_rps"]) / median(results["anchor_rps"])
    batch_ratio = median(results["batch"]) / median(results["single"])
    rows = [
        {"measure": "/recommend latency, median (ms)", "service": median(results["http"]) * 1e3,
         "anchor": median(results["in_process"]) * 1e3, "anchor is": "same work in process",
         "ratio": latency_ratio, "target": "<= 3", "met": "yes" if latency_ratio <= 3 else "no"},
        {"measure": f"throughput, {CONNECTIONS} connections (req/s)",
         "service": median(results["bento_rps"]), "anchor": median(results["anchor_rps"]),
         "anchor is": "minimal FastAPI app, same work", "ratio": throughput_ratio,
         "target": ">= 0.6", "met": "yes" if throughput_ratio >= 0.6 else "no"},
        {"measure": "1,000-row /recommend_batch vs one /recommend (ms)",
         "service": median(results["batch"]) * 1e3, "anchor": median(results["single"]) * 1e3,
         "anchor is": "one single request", "ratio": batch_ratio, "target": "<= 10",
         "met": "yes" if batch_ratio <= 10 else "no"},
    ]
    return "\n".join([
        "## Service (BentoML) against in-process work and a plain FastAPI app",
        "",
        f"`{command}`",
        "",
        machine_line() + ".",
        "",
        f"Model: {model_note}. Medians over {len(results['http'])} alternating rounds "
        f"({len(results['batch'])} batches interleaved with {len(results['single'])} single "
        f"requests); errors during the load rounds: {results['errors']}.",
        "",
        markdown_table(rows, ["measure", "service", "anchor", "anchor is", "ratio", "target",
                              "met"]),
        "",
        "The same `RecommendationEngine` answers in all three (validation, one vectorized model "
        "call, ranking, explanation, audit row in SQLite). Both servers run one process on this "
        "shared machine; the load generator (Python threads, httpx) runs on the same cores, so "
        "compare the ratios rather than absolute figures.",
    ])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.service",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--home", default=None,
                        help="models folder with a champion (default: train a small one in a "
                             "temporary folder)")
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

        # configs/train.yaml as `make demo` uses it (learner chosen by the DR criterion), on a
        # smaller simulated cohort so that the benchmark trains in minutes.
        run_training(overrides={"data": {"n": 5000}}, reason="service benchmark")
        model_note = ("champion trained by `configs/train.yaml` (learner auto) on a "
                      "simulated cohort of 5,000 (default scenario)")
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
