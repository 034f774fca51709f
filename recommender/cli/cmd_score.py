"""``recommender score``: the scored table of a cohort file, from a registered model."""

from __future__ import annotations

from recommender.cli._table_options import add_service_options, crisis_rows_first

HELP = "score a cohort file with a registered model and write the scored table"

# The models folder: the champion.
MODELS_FOLDER = "reads"


def configure(parser) -> None:
    parser.add_argument(
        "--model",
        default="models:/burnout-recommender@champion",
        help="model URI, alias or version (default: the champion)",
    )
    parser.add_argument(
        "--data",
        required=True,
        metavar="FILE",
        help="cohort file (.csv/.parquet) with the profile columns",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="where to write the scored table (.csv or .parquet)",
    )
    add_service_options(parser)
    parser.add_argument(
        "--contributions",
        action="store_true",
        help="add contrib_<feature> columns explaining the recommended arm",
    )
    parser.add_argument(
        "--offered", default=None, help="comma-separated arms the program can offer (default: all)"
    )


# an option argparse refuses: the file's crisis rows answered first (see recommender.cli)
answer_refused = crisis_rows_first("nothing was scored")


def run(args) -> int:
    from pipelines.score import recommendation_mix_text, score_file

    offered = [a.strip() for a in args.offered.split(",")] if args.offered else None
    result = score_file(
        args.model,
        args.data,
        args.out,
        alpha=args.alpha,
        contributions=args.contributions,
        offered=offered,
        serve_config=args.serve_config,
    )
    version = f" version {result.version}" if result.version else ""
    digest = f" (sha256 {result.catalog_sha256})" if result.catalog_sha256 else ""
    print(
        f"scored {result.rows:,} rows with {result.model_uri}{version} and intervention "
        f"catalog {result.catalog_version}{digest} -> {result.path}"
    )
    print(f"recommended: {recommendation_mix_text(result.arm_counts)}")
    for note in result.notes:
        print(f"note: {note}")
    for warning in result.warnings:
        print(f"warning: {warning}")
    return 0
