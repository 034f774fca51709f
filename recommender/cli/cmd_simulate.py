"""``recommender simulate``: write a simulated cohort with oracle effects to CSV or Parquet."""

from __future__ import annotations

import argparse
import contextlib

from recommender.cli._numbers import simulator_whole_number

HELP = "simulate a calibrated cohort (profiles, arms, follow-up, true effects) to CSV or Parquet"

_SUFFIXES = (".csv", ".parquet")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        default="default",
        help=(
            "scenario name in configs/scenarios (default, homogeneous, null, conservative, "
            "local) or a YAML path"
        ),
    )
    parser.add_argument(
        "--n",
        type=simulator_whole_number("people", minimum=1),
        default="20000",
        help="number of people (rows), e.g. 20000 or 1_000_000 (default 20000)",
    )
    parser.add_argument(
        "--seed",
        type=simulator_whole_number("seed", minimum=0),
        default="7",
        help="random seed, a whole number >= 0 (default 7)",
    )
    parser.add_argument(
        "--assignment",
        default="rct",
        help="rct (randomized, see --rct-shares) or observational (confounded)",
    )
    parser.add_argument(
        "--rct-shares",
        default=None,
        help="arm shares for rct, e.g. 'none=0.5,coaching=0.5' (default: the scenario's)",
    )
    parser.add_argument(
        "--catalog",
        default=None,
        help="intervention catalog YAML whose arms the scenario's must be "
        "(default: configs/interventions.yaml)",
    )
    parser.add_argument("--out", required=True, help="output file ending in .csv or .parquet")


@contextlib.contextmanager
def memory_for(n: int, option: str = "--n"):
    """Name ``option`` when ``n`` simulated people do not fit in memory (numpy's MemoryError,
    raised as the arrays are allocated, before anything is written)."""
    from recommender.errors import InputError

    try:
        yield
    except MemoryError as error:
        raise InputError(
            f"{option} {n:,}: not enough memory to simulate {n:,} people at once ({error}); "
            f"give a smaller {option}"
        ) from None


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from recommender.catalog import load_catalog
    from recommender.cohort import check_table_output, write_cohort
    from recommender.errors import InputError
    from recommender.simulate import ASSIGNMENTS, load_scenario, parse_shares, simulate_cohort
    from recommender.simulate import resolve_rct_shares

    n, seed = args.n, args.seed
    if args.assignment not in ASSIGNMENTS:
        raise InputError(
            f"--assignment: expected one of {', '.join(ASSIGNMENTS)}, got {args.assignment!r}"
        )
    out = Path(args.out)
    if out.suffix.lower() not in _SUFFIXES:
        raise InputError(f"--out: the file must end in {' or '.join(_SUFFIXES)}, got {str(out)!r}")
    check_table_output(out)
    try:
        catalog = load_catalog(args.catalog)
    except InputError as error:
        raise InputError(f"--catalog: {error}", problems=error.problems) from error
    try:
        scenario = load_scenario(args.scenario)
        scenario.check_catalog(
            catalog.arm_ids,
            catalog.control,
            catalog=f"the catalog {args.catalog or 'configs/interventions.yaml'}",
        )
    except InputError as error:
        raise InputError(f"--scenario: {error}", problems=error.problems) from error
    shares = None
    if args.rct_shares is not None:
        if args.assignment != "rct":
            raise InputError("--rct-shares: only accepted with --assignment rct")
        shares = parse_shares(args.rct_shares, field="--rct-shares")
        resolve_rct_shares(scenario, shares, field="--rct-shares")

    with memory_for(n):
        cohort = simulate_cohort(
            scenario, n, seed=seed, assignment=args.assignment, rct_shares=shares
        )
    write_cohort(cohort, out)
    counts = cohort["intervention"].value_counts().reindex(scenario.arms, fill_value=0)
    arms = ", ".join(f"{arm} {count:,}" for arm, count in counts.items())
    print(
        f"wrote {len(cohort):,} rows to {out} (scenario {scenario.name}, seed {seed}, assignment {args.assignment})\n"
        f"arms: {arms}"
    )
    return 0
