"""Coverage of the 90 % intervals on cohorts that share nothing with ``recommender.simulate``.

Each family is a generator of cohorts with known per-person effects: the four setups of Nie and
Wager's R-learner paper (written here from the paper's definitions, Y = b(X) + (W − ½) τ(X) +
σ ε), CausalML's and EconML's synthetic generators, the IHDP realizations (truth mu1 − mu0), and
multi-arm designs of our own making with smooth and step-shaped effects, heavy-tailed noise,
a nearly unoffered arm, and n from 3,000 to 50,000, randomised or confounded with known
propensities. For every cohort, ``UpliftModel(learner="auto")`` and EconML's CausalForestDML
are fitted on the same training rows, and their 90 % intervals are scored on fresh people
from the same generator (IHDP: on its own 747 rows, the usual within-sample protocol):

- coverage: share of person-arm pairs whose true effect lies inside, overall and per arm;
- mean width of the intervals;
- ``needed``: the smallest factor on the half-widths (about the same point estimate) that
  reaches 90 % against the truth; ``width / needed width`` is 1 / needed, the acceptance's
  "no honesty by inflation" (at most 1.2).

Realisations. A 90 % interval promises 90 % over draws of the data, not on every cohort: the
people of one cohort share the fitted model's errors, so one cohort's coverage swings far (the
same family covered 53 % on one draw and 96 % on the next). Each family is therefore scored on
several independent realisations (default ``HELD_OUT_SEEDS``; IHDP its ten), and judged on the
mean coverage over them, with their range beside it. The interval rules were chosen on other
draws, ``TUNING_SEEDS`` (``--tuning``); the figures in docs/benchmarks.md come from the held-out
seeds, fixed before they were ever run.

``--quick`` runs small cohorts of a few families (a smoke test); the full run takes about
an hour on two shared cores (``--methods ours`` and ``--methods forest`` can run side by side
with ``--json`` and be joined by ``--merge``). Seeds are fixed: the same command gives the same
cohorts.

The generators are in ``bench.coverage_generators``, the families and their seeds in
``bench.coverage_families``, the scoring and acceptance in ``bench.coverage_scoring`` and the
runs in ``bench.coverage_runs``; this module is the report and the command line, and
re-exports the names other modules and the tests use from here.
"""

from __future__ import annotations

import argparse
import sys

from bench.coverage_families import (
    FAMILIES,
    HELD_OUT_SEEDS,
    TUNING_SEEDS,
    draw,
    family_seeds,
    selected_families,
)
from bench.coverage_generators import Cohort, multi_arm, nie_wager
from bench.coverage_runs import interval_cost, merge, run
from bench.coverage_scoring import (
    ALPHA,
    CRITERIA,
    _scores,
    acceptance,
    acceptance_report,
    criteria,
    summarise,
)

__all__ = [
    "FAMILIES",
    "Cohort",
    "draw",
    "family_seeds",
    "selected_families",
    "run",
    "summarise",
    "criteria",
    "acceptance",
    "to_markdown",
    "main",
    # moved to bench.coverage_generators, coverage_families, coverage_scoring and
    # coverage_runs; still used from here
    "ALPHA",
    "CRITERIA",
    "HELD_OUT_SEEDS",
    "TUNING_SEEDS",
    "_scores",
    "acceptance_report",
    "interval_cost",
    "merge",
    "multi_arm",
    "nie_wager",
]


def _method_cells(method: str, figures: dict) -> dict:
    by_cohort = figures["coverage_by_cohort"]
    return {
        f"{method} cover": f"{figures['coverage']:.1%}"
        + (
            f" ({figures['realisations']} draws)"
            if method == "forest" and "realisations" in figures
            else ""
        ),
        f"{method} range": f"{min(by_cohort):.0%}-{max(by_cohort):.0%}",
        f"{method} worst arm": f"{figures['min_arm']:.1%}",
        f"{method} width": f"{figures['width']:.3g}",
        f"{method} width / needed": f"{figures['inflation']:.2f}",
    }


def to_markdown(result: dict, command: str, section: str = "coverage") -> str:
    """The report; a section other than the default ``coverage`` is a later run of the same
    table, placed under it in docs/benchmarks.md, so its heading is one level lower and named
    after the section."""
    from bench._report import machine_line, markdown_table

    rows = []
    for row in result["families"]:
        ours, forest = row.get("ours"), row.get("forest")
        rows.append(
            {
                "family": row["family"],
                "n": f"{row['n']:,}" if row["n"] else "its rows",
                "realisations": row["cohorts"],
                **(_method_cells("ours", ours) if ours else {}),
                **(_method_cells("forest", forest) if forest else {}),
                "fit s CPU ours / forest": " / ".join(
                    f"{r['fit_s']:.1f}" for r in (ours, forest) if r is not None
                ),
                "acceptance": ("; ".join(acceptance(row)) or "holds") if ours else "–",
            }
        )
    what = "\n".join(f"- `{row['family']}`: {row['what']}" for row in result["families"])
    heading = "## Interval coverage on cohorts the simulator never made"
    if section != "coverage":
        heading = f"### Interval coverage on cohorts the simulator never made: `{section}`"
    return (
        f"{heading}\n\n"
        f"Command: `{command}`\n\nMachine: {machine_line()}\n\n"
        "90 % intervals of `UpliftModel(learner='auto')` (propensities given where the "
        "generator knows them) and of EconML's CausalForestDML (its own inference; LightGBM "
        "nuisances, estimated propensities on confounded cohorts, the arm shares on "
        "randomised ones), fitted on the same training rows and scored on 4,000 fresh "
        "people per cohort (IHDP: its 747 rows). Each family is drawn several times "
        "(`realisations`, independent seeds): a 90 % interval promises 90 % over draws of "
        "the data, and one draw's coverage swings widely because its people share the "
        "fitted model's error. `cover`: share of person-arm pairs whose true effect is "
        "inside, averaged over the realisations; `range`: the lowest and highest "
        "realisation's; `worst arm`: the lowest arm's (averaged over realisations); "
        "`width / needed`: mean width over the width of the same intervals rescaled by the "
        "smallest factor reaching 90 % on the family's pooled pairs (below 1 too narrow, "
        "above 1 wider than needed). Acceptance (issue 14): cover 86-94 %, no arm below "
        "80 %, width / needed at most 1.2, narrower than the forest where both cover.\n\n"
        + markdown_table(rows)
        + "\n\nAcceptance, criterion by criterion:\n\n"
        + acceptance_report(result)
        + "\n\nFamilies:\n\n"
        + what
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.coverage", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small cohorts, a few families")
    parser.add_argument(
        "--families", help="comma-separated subset of " + ",".join(f.name for f in FAMILIES)
    )
    parser.add_argument("--methods", default="ours,forest", help="ours,forest")
    parser.add_argument("--section", default="coverage", help="section of docs/benchmarks.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--json", help="also save the raw figures to this file")
    parser.add_argument(
        "--seeds",
        help="comma-separated seeds for every family but IHDP (default: the held-out seeds "
        + ",".join(map(str, HELD_OUT_SEEDS))
        + ")",
    )
    parser.add_argument(
        "--tuning",
        action="store_true",
        help="the seeds the interval rules were chosen on: " + ",".join(map(str, TUNING_SEEDS)),
    )
    parser.add_argument("--realisations", type=int, help="only the first so many seeds")
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="JSON",
        help="join the --json files of runs made apart (same seeds) into one report",
    )
    parser.add_argument(
        "--interval-cost",
        action="store_true",
        help="only measure the fit-time cost of the interval calibration at n = 20,000",
    )
    args = parser.parse_args(argv)
    if args.interval_cost:
        cost = interval_cost()
        print(
            f"UpliftModel(learner='auto').fit, default scenario, n = {cost['n']:,} "
            f"{cost['assignment']}, CPU s (median of {cost['fits']}): "
            f"{cost['calibrated']:.1f} with the interval calibration, "
            f"{cost['uncalibrated']:.1f} without: +{cost['cost']:.0%}"
        )
        return 0
    families = args.families.split(",") if args.families else None
    unknown = set(families or ()) - {f.name for f in FAMILIES}
    if unknown:
        parser.error(f"unknown families {sorted(unknown)}")
    if args.seeds and args.tuning:
        parser.error("--seeds and --tuning choose the seeds twice; give one")
    seeds = [int(v) for v in args.seeds.split(",")] if args.seeds else None
    if args.merge:
        import json

        runs = []
        for path in args.merge:
            with open(path) as handle:
                runs.append(json.load(handle))
        result = merge(runs)
    else:
        result = run(
            families,
            quick=args.quick,
            methods=tuple(args.methods.split(",")),
            seeds=list(TUNING_SEEDS) if args.tuning else seeds,
            realisations=args.realisations,
            log=lambda message: print(message, file=sys.stderr, flush=True),
        )
    command = "python -m bench.coverage " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.merge:  # the report names the runs that made it, then the join
        command = "`, `".join([*(r.get("command", "?") for r in runs), command.strip()])
    result["command"] = command.strip()
    if args.json:  # first: the figures outlive a failure in the report
        import json

        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    markdown = to_markdown(result, command.strip(), args.section)
    print(markdown)
    if not args.no_write and not args.quick:
        from bench._report import write_section

        write_section(args.section, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
