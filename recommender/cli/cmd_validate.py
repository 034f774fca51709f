"""``recommender validate FILE``: check a cohort file against the data contract."""

from __future__ import annotations

HELP = "check a cohort CSV/Parquet file against the data contract and list every problem"


def configure(parser) -> None:
    parser.add_argument("file", help="cohort table (.csv, .csv.gz, .tsv or .parquet)")
    parser.add_argument(
        "--training",
        action="store_true",
        help="also require the training columns (intervention, *_followup) and check arms",
    )
    parser.add_argument(
        "--catalog",
        default=None,
        help="intervention catalog YAML naming the allowed arms "
        "(default: configs/interventions.yaml)",
    )
    parser.add_argument(
        "--min-arm-rows",
        type=int,
        default=30,
        help="fewest rows an arm present in a training file may have (default 30)",
    )
    parser.add_argument(
        "--extra-feature",
        action="append",
        default=[],
        metavar="COLUMN",
        help="an optional profile column to require and check (repeatable)",
    )
    parser.add_argument(
        "--max-listed",
        type=int,
        default=3,
        help="example rows shown per problem kind; counts always cover all (default 3)",
    )


def run(args) -> int:
    from recommender.catalog import load_catalog
    from recommender.cohort import read_cohort, validate_cohort

    arms, control = None, "none"
    if args.training or args.catalog:
        catalog = load_catalog(args.catalog)
        arms, control = catalog.arm_ids, catalog.control
    frame = read_cohort(args.file)
    report = validate_cohort(
        frame,
        training=args.training,
        arms=arms,
        control=control,
        min_arm_rows=args.min_arm_rows,
        extra_features=args.extra_feature,
    )
    print(f"{args.file}")
    print(report.format(max_listed=args.max_listed))
    return 0 if report.ok else 2
