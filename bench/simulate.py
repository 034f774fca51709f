"""How fast the simulator makes cohorts: ``simulate_cohort(default, 1_000_000)`` (median of 5)
beside the floor of drawing a table of that shape with plain numpy and pandas, and the
``recommender simulate`` command writing one million rows to Parquet (one run, end to end,
including interpreter start-up and the write).

Run ``python -m bench.simulate``; ``--n`` and ``--repeats`` change the size and repetitions.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["run", "to_markdown", "main"]


def _time(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def _numpy_floor(n: int, columns: int) -> pd.DataFrame:
    """The least any simulator of this table could do: draw n x columns normals, make a frame."""
    draws = np.random.default_rng(0).standard_normal((n, columns))
    return pd.DataFrame(draws, columns=[f"c{i}" for i in range(columns)])


def run(n: int = 1_000_000, repeats: int = 5) -> dict:
    from recommender.simulate import load_scenario, simulate_cohort

    scenario = load_scenario("default")
    shape = simulate_cohort(scenario, 1000, seed=7).shape  # warm-up, and the table's width
    simulate = _time(lambda: simulate_cohort(scenario, n, seed=7), repeats)
    observational = _time(
        lambda: simulate_cohort(scenario, n, seed=7, assignment="observational"), repeats
    )
    floor = _time(lambda: _numpy_floor(n, shape[1]), repeats)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "cohort.parquet"
        command = [
            sys.executable,
            "-m",
            "recommender",
            "simulate",
            "--n",
            str(n),
            "--seed",
            "7",
            "--out",
            str(out),
        ]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, text=True)
        cli = time.perf_counter() - start
        size_mb = out.stat().st_size / 1e6
    return {
        "n": n,
        "columns": shape[1],
        "repeats": repeats,
        "simulate": simulate,
        "observational": observational,
        "floor": floor,
        "cli": cli,
        "parquet_mb": size_mb,
    }


def to_markdown(result: dict) -> str:
    from bench._report import machine_line, markdown_table, median

    n = result["n"]
    simulate, observational, floor = (
        median(result[k]) for k in ("simulate", "observational", "floor")
    )
    rows = [
        {
            "what": f"simulate_cohort(default, {n:,}), rct",
            "median s": simulate,
            "rows per s": n / simulate,
            "vs floor": simulate / floor,
        },
        {
            "what": f"simulate_cohort(default, {n:,}), observational",
            "median s": observational,
            "rows per s": n / observational,
            "vs floor": observational / floor,
        },
        {
            "what": f"floor: numpy draws {n:,} x {result['columns']} + DataFrame",
            "median s": floor,
            "rows per s": n / floor,
            "vs floor": 1.0,
        },
        {
            "what": f"`recommender simulate --n {n}` to Parquet (1 run, with start-up and write; {result['parquet_mb']:.0f} MB)",
            "median s": result["cli"],
            "rows per s": n / result["cli"],
            "vs floor": result["cli"] / floor,
        },
    ]
    return "\n".join(
        [
            "## Simulator",
            "",
            f"Command: `python -m bench.simulate --n {n} --repeats {result['repeats']}`  ",
            f"Machine: {machine_line()}",
            "",
            f"Median of {result['repeats']} runs (the command: one run). The floor is the time to draw a table of",
            "the same shape with plain numpy and wrap it in pandas, the least any simulator of it could take;",
            "`vs floor` is the ratio. The machine is shared with other jobs while this runs, so absolute",
            "times are noisy; the ratio is the figure to compare.",
            "",
            markdown_table(rows, ["what", "median s", "rows per s", "vs floor"]),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    from bench._report import write_section

    markdown = to_markdown(run(args.n, args.repeats))
    path = write_section("simulate", markdown)
    print(markdown)
    print(f"\nwrote section 'simulate' of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
