"""Workers benchmark: `/recommend` throughput at 16 connections with two workers against one,
with the audit log on SQLite (the default file) and on PostgreSQL, all in the same run.

Each round starts `recommender serve` four times (SQLite or PostgreSQL audit store x one or two
workers, 16 threads each), warms it up and measures requests answered per second and their 99th
percentile under 16 keep-alive connections (wrk, the load generator of bench/service.py), and
the audit rows written against the answers given. Rounds alternate the four
contenders, so drift in the machine's load hits them alike; medians over the rounds.

PostgreSQL is a throwaway cluster of Debian's server binaries in a temporary folder (the one
the tests use, tests/pg_cluster.py).

Run: ``.venv/bin/python -m bench.workers`` (the champion `make demo` registers, n = 20,000 with
configs/train.yaml, trained once into bench/out/demo-model/ and shared with bench/service.py),
or ``--home models`` to serve the champion of an existing models folder. The SQLite store runs
with the shipped durability (``audit.durability: process_crash``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from bench._report import machine_line, markdown_table, median, write_section
from bench._wrk import post_load, wrk_binary
from bench.service_clients import _free_port, _server, percentile
from bench.service_contenders import (
    CONNECTIONS,
    DEMO_NOTE,
    KEY,
    SALT,
    WRK_BODIES,
    _profile,
    demo_model_home,
)

ROOT = Path(__file__).resolve().parents[1]


def _serve_config(folder: Path, workers: int) -> Path:
    from recommender.paths import config_path

    raw = yaml.safe_load(config_path("serve.yaml").read_text())
    raw["workers"] = workers
    path = folder / f"serve-{workers}-workers.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run(home: Path, work: Path, *, seconds: float, repeats: int, postgres: bool = True) -> dict:
    import httpx

    from recommender.service import AuditLog

    cluster = None
    stores = {"SQLite": f"sqlite:///{work / 'bench-audit.db'}"}
    if postgres:
        sys.path.insert(0, str(ROOT / "tests"))
        from pg_cluster import Cluster, server_binaries

        binaries = server_binaries()
        if binaries is None:
            raise SystemExit(
                "PostgreSQL's server binaries are missing (Debian: apt-get install "
                "postgresql; `make test` installs them), or run with --sqlite-only"
            )
        cluster = Cluster(binaries)
        stores["PostgreSQL"] = cluster.database("bench_audit")
    results: dict = {"load": (os.getloadavg()[0], None)}
    # Connection k of wrk sends the bodies connection k of bench/service.py sends.
    bodies = [_profile(k * 100_000 + i) for i in range(WRK_BODIES) for k in range(CONNECTIONS)]
    try:
        base = {
            **os.environ,
            "RECOMMENDER_HOME": str(home),
            "BENTOML_HOME": str(work / "bentoml"),
            "BENTOML_DO_NOT_TRACK": "True",
            "RECOMMENDER_API_KEYS": f"program={KEY}",
            "RECOMMENDER_AUDIT_SALT": SALT,
        }
        base.pop("MLFLOW_TRACKING_URI", None)
        for _ in range(repeats):
            for store, url in stores.items():
                for workers in (1, 2):
                    env = {
                        **base,
                        "RECOMMENDER_AUDIT_URL": url,
                        "RECOMMENDER_SERVE_CONFIG": str(_serve_config(work, workers)),
                    }
                    port = _free_port()
                    command = [
                        sys.executable,
                        "-m",
                        "recommender",
                        "serve",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                    ]
                    log = work / f"bench-{store}-{workers}.log"
                    audit = AuditLog(url, salt=SALT)
                    before = audit.count()
                    with _server(command, env, port, log, "/readyz") as served:
                        with httpx.Client(
                            base_url=served, timeout=120, headers={"Authorization": f"Bearer {KEY}"}
                        ) as client:
                            for i in range(40):  # warm both workers' first requests
                                client.post("/recommend", json=_profile(i)).raise_for_status()
                        load = post_load(
                            served,
                            "/recommend",
                            bodies,
                            connections=CONNECTIONS,
                            seconds=seconds,
                            authorization=f"Bearer {KEY}",
                        )
                    entry = results.setdefault(
                        (store, workers),
                        {"rps": [], "latencies": [], "errors": 0, "answers": 0, "audit_rows": 0},
                    )
                    entry["rps"].append(load.rate)
                    entry["latencies"].extend(load.latencies)
                    entry["errors"] += load.errors
                    entry["answers"] += 40 + load.succeeded
                    entry["audit_rows"] += audit.count() - before
                    audit.close()
    finally:
        if cluster is not None:
            cluster.stop()
    results["load"] = (results["load"][0], os.getloadavg()[0])
    return results


def report(results: dict, command: str, model_note: str, seconds: float) -> str:
    rows = []
    for store in ("SQLite", "PostgreSQL"):
        if (store, 1) not in results:
            continue
        one, two = results[(store, 1)], results[(store, 2)]
        rows.append(
            {
                "audit store": store,
                "1 worker (req/s)": median(one["rps"]),
                "2 workers (req/s)": median(two["rps"]),
                "2 / 1": median(two["rps"]) / median(one["rps"]),
                "p99 1 / 2 workers (ms)": f"{percentile(one['latencies'], 99) * 1e3:.0f} / "
                f"{percentile(two['latencies'], 99) * 1e3:.0f}",
                "errors": one["errors"] + two["errors"],
                "audit rows vs answers": f"{one['audit_rows'] + two['audit_rows']:,} vs "
                f"{one['answers'] + two['answers']:,}",
            }
        )
    rounds = len(next(v for k, v in results.items() if k != "load")["rps"])
    return "\n".join(
        [
            "## Workers: throughput at 16 connections, one worker against two, SQLite and PostgreSQL",
            "",
            f"`{command}`",
            "",
            machine_line() + f"; load average (1 min) {results['load'][0]:.1f} at start, "
            f"{results['load'][1]:.1f} at end (the two cores are shared with other sessions).",
            "",
            f"Model: {model_note}. `recommender serve` with 16 threads per worker; medians over "
            f"{rounds} alternating rounds of {seconds:g} s each; every request audited.",
            "",
            markdown_table(
                rows,
                [
                    "audit store",
                    "1 worker (req/s)",
                    "2 workers (req/s)",
                    "2 / 1",
                    "p99 1 / 2 workers (ms)",
                    "errors",
                    "audit rows vs answers",
                ],
            ),
            "",
            "The load generator (wrk, 16 connections, as in bench/service.py) shares the machine's "
            "cores with the workers (and with PostgreSQL), so a second worker can add at most what "
            "the cores left free allow; on a machine with spare cores the ratio is the one to "
            "compare. SQLite runs "
            "with the shipped `audit.durability: process_crash` (WAL, synchronous=NORMAL); "
            "PostgreSQL is a throwaway local cluster (tests/pg_cluster.py, fsync and "
            "synchronous_commit off: a crash of the database may lose its last commits). "
            "Every answer waits for its audit record's commit, grouped with the other "
            "requests' records waiting at that moment.",
        ]
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.workers", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--home",
        default=None,
        help="models folder with a champion (default: train the demo's in a temporary folder)",
    )
    parser.add_argument("--retrain", action="store_true", help="train the demo model afresh")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per load round")
    parser.add_argument("--repeats", type=int, default=2, help="alternating rounds")
    parser.add_argument(
        "--sqlite-only", action="store_true", help="measure the SQLite store only (no PostgreSQL)"
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not write the report")
    args = parser.parse_args(argv)
    wrk_binary()  # fail now, not after training, if the load generator is missing
    command = "python -m bench.workers " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.home:
        home = Path(args.home).resolve()
        model_note = f"the champion in {args.home}"
    else:
        home = demo_model_home(retrain=args.retrain)
        model_note = DEMO_NOTE
    work = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    try:
        results = run(
            home, work, seconds=args.seconds, repeats=args.repeats, postgres=not args.sqlite_only
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(results, command.strip(), model_note, args.seconds)
    print(text)
    if not args.no_write:
        write_section("workers", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
