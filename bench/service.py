"""Service benchmark: one explained answer in process and over HTTP, under load, and in batches.

Measured on the model ``make demo`` registers (n = 20,000, ``configs/train.yaml``), in one run:

1. in process (validate, encode, predict, rank, explain, audit row committed, JSON by the
   service's encoder, pydantic's): the median and 99th percentile of one ``/recommend`` answer, and
   a 1,000-row batch;
2. over HTTP (``recommender serve`` as ``configs/serve.yaml`` ships it), from one wrk
   connection: median and 99th percentile of one ``/recommend``, against the in-process median;
3. 16 keep-alive wrk connections for ``--seconds``: requests per second, their 99th
   percentile, errors, beside two anchors under the same load: a minimal FastAPI app doing the
   same work through the same engine, and BentoML serving only the raw LightGBM calls of one
   answer (the compiled forest and two arms' TreeSHAP, ``bench/_bento_anchor.py``); the single
   requests and the load are measured again, for the service and the anchors alike, from two
   Python clients (httpx, the earlier load generator, and ``http.client``) as extra rows;
4. one 1,000-row ``/recommend_batch`` against one ``/recommend``;
5. the service's audit rows against the answers it gave.

The audit store is SQLite with the shipped durability (``process_crash``: committed, no fsync
per commit); one in-process row gives the answer with ``power_loss`` (an fsync per commit).

Run: ``.venv/bin/python -m bench.service`` (``make bench`` installs wrk; else ``apt-get install
wrk``). It trains the demo model once into
``bench/out/demo-model/<hash of the training config and catalog>`` and reuses it on later runs
(``--retrain`` trains afresh); ``--home models`` serves the champion of an existing models
folder (after ``make demo``).

The code: what is measured in ``bench.service_contenders``, the servers and Python clients in
``bench.service_clients``, the run in ``bench.service_run``, the report in
``bench.service_report`` and ``--parts`` in ``bench.service_parts``; this module is the
command line.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench._report import write_section
from bench._wrk import wrk_binary
from bench.service_contenders import DEMO_NOTE, create_anchor_app, demo_model_home
from bench.service_parts import parts
from bench.service_report import report
from bench.service_run import run

# create_anchor_app: the anchor server's ``uvicorn --factory bench.service:create_anchor_app``
__all__ = ["main", "run", "report", "parts", "create_anchor_app"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.service", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--home",
        default=None,
        help="models folder with a champion (default: the demo model, trained once into "
        "bench/out/demo-model/)",
    )
    parser.add_argument("--retrain", action="store_true", help="train the demo model afresh")
    parser.add_argument("--requests", type=int, default=100, help="requests per latency round")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per load round")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the report")
    parser.add_argument(
        "--parts", action="store_true", help="only time each step of a 1,000-row batch and print"
    )
    args = parser.parse_args(argv)
    if not args.parts:
        wrk_binary()  # before minutes of training and measuring: fail now if wrk is missing
    command = "python -m bench.service " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.parts:
        home = Path(args.home).resolve() if args.home else demo_model_home(retrain=args.retrain)
        print(f"load average (1 min) {os.getloadavg()[0]:.1f}")
        print(parts(home))
        return 0
    if args.home:
        home = Path(args.home).resolve()
        model_note = f"the champion of {args.home}"
    else:
        home = demo_model_home(retrain=args.retrain)
        model_note = DEMO_NOTE
    work = Path(tempfile.mkdtemp(prefix="bench-service-"))
    try:
        results = run(
            home, work, requests=args.requests, seconds=args.seconds, repeats=args.repeats
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    markdown = report(results, command.strip(), model_note)
    print(markdown)
    if not args.no_write:
        write_section("service", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
