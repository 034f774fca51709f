"""``recommender batch-score``: score a very large cohort on Spark with a registered model."""

from __future__ import annotations

from recommender.cli._numbers import whole_number
from recommender.cli._table_options import add_service_options, crisis_rows_first

HELP = "score a large cohort on Spark, as score does, and write the scored table as Parquet"

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
        help="cohort as Parquet (file or folder) or CSV, with the profile columns",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="Parquet folder to write (replaced only once scoring succeeded; an existing path "
        "must be an earlier scored table unless --overwrite is given)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace whatever is at --out, even a folder that is not an earlier scored table",
    )
    parser.add_argument(
        "--master",
        default="local[2]",
        help="Spark master when no session is running (default: local[2])",
    )
    parser.add_argument(
        "--partitions",
        type=whole_number(minimum=1),
        default=None,
        help="partitions to score on (default: the input's, at least one per core)",
    )
    add_service_options(parser)
    parser.add_argument(
        "--contributions",
        action="store_true",
        help="add contrib_<feature> columns explaining the recommended arm",
    )


# an option argparse refuses: the file's crisis rows answered first (see recommender.cli)
answer_refused = crisis_rows_first("nothing was scored", on_spark=True)


def run(args) -> int:
    import sys

    from pipelines.batch import interrupt_behind, score_with_spark, spark_error_message
    from pipelines.score import recommendation_mix_text

    try:
        summary = score_with_spark(
            args.model,
            args.data,
            args.out,
            master=args.master,
            partitions=args.partitions,
            alpha=args.alpha,
            contributions=args.contributions,
            overwrite=args.overwrite,
            serve_config=args.serve_config,
        )
    except Exception as error:  # noqa: BLE001 - only Spark's own failures are rephrased
        if not type(error).__module__.startswith(("pyspark", "py4j")):
            raise
        if (interrupt := interrupt_behind(error)) is not None:
            raise interrupt from None  # stopped, not failed: said as every stop is
        # A failed Spark job carries the worker's whole traceback and the JVM's; the last
        # Python error line is what a user can act on (the log above keeps the rest).
        print(
            f"error: the Spark job failed and nothing was written to {args.out}: "
            f"{spark_error_message(error)}",
            file=sys.stderr,
        )
        return 1
    version = f" version {summary.version}" if summary.version else ""
    print(
        f"scored {summary.rows:,} rows on {summary.partitions} Spark partitions with "
        f"{summary.model_uri}{version} -> {summary.path}"
    )
    print(f"recommended: {recommendation_mix_text(summary.arm_counts)}")
    for note in summary.notes:
        print(f"note: {note}")
    for warning in summary.warnings:
        print(f"warning: {warning}")
    return 0
