"""``recommender calibration``: the simulator's target-versus-simulated table as Markdown."""

from __future__ import annotations

import argparse

from recommender.cli._numbers import simulator_whole_number

HELP = "simulate every published study the simulator is calibrated to; write target vs simulated (docs/calibration.md)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default=None,
        help="Markdown file to write (e.g. docs/calibration.md); default: print it",
    )
    parser.add_argument(
        "--seed",
        type=simulator_whole_number("seed", minimum=0),
        default=None,
        help="random seed, a whole number >= 0 (default: the tests' fixed seed)",
    )
    parser.add_argument(
        "--n",
        type=simulator_whole_number("people", minimum=1000),
        default=None,
        help="simulated people per study cohort, at least 1000 (default 100000)",
    )
    parser.add_argument(
        "--scenario", default="default", help="scenario to check (default: default)"
    )


def run(args: argparse.Namespace) -> int:
    from recommender._files import check_writable, write_atomically
    from recommender.cli.cmd_simulate import memory_for
    from recommender.errors import InputError
    from recommender.simulate import calibration_markdown, load_scenario, run_calibration
    from recommender.simulate import heterogeneity_markdown
    from recommender.simulate import CALIBRATION_N, CALIBRATION_SEED

    seed = CALIBRATION_SEED if args.seed is None else args.seed
    n = CALIBRATION_N if args.n is None else args.n
    out = None if args.out is None else check_writable(args.out)  # before the simulating
    try:
        scenario = load_scenario(args.scenario)
    except InputError as error:
        raise InputError(f"--scenario: {error}", problems=error.problems) from error
    command = "recommender calibration" + (f" --out {args.out}" if args.out else "")
    if args.seed is not None:
        command += f" --seed {seed}"
    if args.n is not None:
        command += f" --n {n}"
    if args.scenario != "default":
        command += f" --scenario {args.scenario}"
    with memory_for(n):  # both the studies and the heterogeneity check simulate n people
        table = run_calibration(seed=seed, n=n, scenario=scenario)
        markdown = calibration_markdown(
            table,
            command=command,
            seed=seed,
            n=n,
            heterogeneity=heterogeneity_markdown(scenario, seed=seed, n=n),
            scenario=scenario,
        )
    # A figure listed as not reproduced (with its reason) is expected outside its band.
    must = table[~table["gap"].astype(bool)]
    passed = int(must["within"].sum())
    if out is not None:
        # Written whole or not at all: a reader never sees half a document.
        write_atomically(out, lambda temporary: temporary.write_text(markdown, encoding="utf-8"))
        print(
            f"wrote {out}: {passed} of {len(must)} studies within target, {len(table) - len(must)} "
            f"listed as not reproduced (scenario {scenario.name}, seed {seed}, n {n:,})"
        )
    else:
        print(markdown)
    for row in must[~must["within"]].itertuples(index=False):
        print(
            f"outside target: {row.study}, {row.quantity}: simulated {row.simulated:.3g}, target {row.target:g} {row.check}"
        )
    return 0 if passed == len(must) else 1
