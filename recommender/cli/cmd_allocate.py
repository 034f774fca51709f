"""``recommender allocate``: plan a cohort under a budget and the program's capacities."""

from __future__ import annotations

import sys

from recommender.cli._numbers import number
from recommender.cli._table_options import add_service_options, crisis_rows_first

HELP = "plan a cohort: who gets which intervention under a budget, capacities and group sizes"

# The models folder: the champion and the service's settings.
MODELS_FOLDER = "reads"


def configure(parser) -> None:
    parser.add_argument(
        "--model",
        default="champion",
        help="registered model: alias, version or URI (default: the champion)",
    )
    parser.add_argument(
        "--data",
        required=True,
        metavar="FILE",
        help="cohort file (.csv/.parquet) with the profile columns",
    )
    parser.add_argument(
        "--out", required=True, metavar="FILE", help="where to write the plan (.csv or .parquet)"
    )
    parser.add_argument(
        "--budget",
        type=_dollars,
        default=None,
        help="money available for the cohort, US$ (default: no limit)",
    )
    parser.add_argument(
        "--capacity",
        default=None,
        metavar="ARM=N,...",
        help="places per arm, overriding the catalog (e.g. coaching=20,peer_group=30)",
    )
    parser.add_argument(
        "--cost",
        default=None,
        metavar="ARM=USD,...",
        help="cost per person, overriding the catalog (e.g. coaching=1200)",
    )
    parser.add_argument(
        "--offered",
        default=None,
        metavar="ARM,...",
        help="arms offered this cycle (default: every arm of the catalog)",
    )
    parser.add_argument(
        "--confident-only",
        action="store_true",
        help="allocate an arm only when its interval excludes no benefit",
    )
    add_service_options(parser)
    parser.add_argument(
        "--floor",
        default=None,
        metavar="ROLE=SHARE,...",
        help="minimum share of each role given an arm, e.g. nurse=0.2,app=0.2",
    )
    parser.add_argument(
        "--time-limit",
        type=_seconds,
        default=60.0,
        help="seconds the solver may take (default 60)",
    )


_dollars = number(lambda value: value >= 0, "US$ >= 0 (leave --budget out for no limit)")
_seconds = number(lambda value: value > 0, "seconds > 0")


# an option argparse refuses: the file's crisis rows answered first (see recommender.cli)
answer_refused = crisis_rows_first("no plan was written")


def run(args) -> int:
    from pipelines.allocate import plan_cohort

    from recommender.errors import PlanTimeout

    offered = [a.strip() for a in args.offered.split(",")] if args.offered else None
    try:
        plan = plan_cohort(
            args.model,
            args.data,
            args.out,
            budget=args.budget,
            # read with the file: a malformed one still gives the crisis rows their resources
            capacity=args.capacity,
            cost=args.cost,
            offered=offered,
            confident_only=args.confident_only,
            alpha=args.alpha,
            time_limit=args.time_limit,
            floors=args.floor,
            serve_config=args.serve_config,
        )
    except PlanTimeout as error:
        print(
            f"recommender allocate: {error}. Give the solver more time "
            f"(--time-limit, now {args.time_limit:g} s) or plan smaller cohorts.",
            file=sys.stderr,
        )
        return 1
    print("\n".join(plan.summary_lines()))
    return 0
