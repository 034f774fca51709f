"""``recommender validate FILE``: check a cohort file against the data contract."""

from __future__ import annotations

from recommender.cli._numbers import whole_number

HELP = "check a cohort CSV/Parquet file against the data contract and list every problem"


def configure(parser) -> None:
    parser.add_argument("file", help="cohort table (.csv, .csv.gz, .tsv or .parquet)")
    parser.add_argument(
        "--training",
        action="store_true",
        help="also require the training columns (intervention, *_followup) and check arms, "
        "extra features and arm sizes as `recommender train --config` would",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="with --training: the training config whose catalog, extra_features and arm "
        "minimum apply (default: configs/train.yaml)",
    )
    parser.add_argument(
        "--catalog",
        default=None,
        help="intervention catalog YAML naming the allowed arms "
        "(default: the training config's, configs/interventions.yaml)",
    )
    parser.add_argument(
        "--min-arm-rows",
        type=whole_number(minimum=1),
        default=None,
        help="fewest rows an arm present in a training file may have (default: what training "
        "with the config needs; 30 without --training). With --training a smaller treatment "
        "arm is a note, as train carries its published estimate; usual care below it is an error",
    )
    parser.add_argument(
        "--extra-feature",
        action="append",
        default=[],
        metavar="COLUMN",
        help="an optional profile column to require and check (repeatable; with --training, "
        "besides the config's extra_features)",
    )
    parser.add_argument(
        "--max-listed",
        type=whole_number(minimum=0),
        default=3,
        help="example rows shown per problem kind; counts always cover all (default 3)",
    )


def run(args) -> int:
    from recommender.catalog import load_catalog
    from recommender.cohort import read_cohort, validate_cohort

    arms, control, extras = None, "none", list(args.extra_feature)
    rule = {"min_arm_rows": 30}
    heading = f"{args.file}"
    if args.training:
        # What `train --config` will check, so that a file validated here is not refused there.
        from pipelines.train import (
            fit_min_arm_rows,
            load_config,
            min_arm_rows_reason,
            training_catalog,
        )

        config = load_config(args.config)
        catalog = load_catalog(args.catalog) if args.catalog else training_catalog(config)
        extras = [
            *config["extra_features"],
            *(c for c in extras if c not in config["extra_features"]),
        ]
        rule = {
            "min_arm_rows": fit_min_arm_rows(config),
            "min_arm_rows_reason": min_arm_rows_reason(config),
            # train carries a small treatment arm rather than refusing: say so, as it will
            "carry_small_arms": True,
        }
        heading += f" (as training with {args.config or 'configs/train.yaml'} would check it)"
    elif args.catalog:
        catalog = load_catalog(args.catalog)
    if args.training or args.catalog:
        arms, control = catalog.arm_ids, catalog.control
    if args.min_arm_rows is not None:
        rule.update(min_arm_rows=args.min_arm_rows, min_arm_rows_reason="--min-arm-rows")
    frame = read_cohort(args.file)
    report = validate_cohort(
        frame, training=args.training, arms=arms, control=control, extra_features=extras, **rule
    )
    print(heading)
    print(report.format(max_listed=args.max_listed))
    return 0 if report.ok else 2
