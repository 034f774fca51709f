"""Options of the commands that write scored tables: the table says what the service's
answers say, so its interval level and ranking threshold come from the service's settings;
and what such a command says of an option refused before its cohort file is read."""

from __future__ import annotations

from recommender.cli._numbers import alpha


def add_service_options(parser) -> None:
    """``--alpha`` (default: the service's) and ``--serve-config`` (the service's file)."""
    parser.add_argument(
        "--alpha",
        type=alpha,
        default=None,
        help="intervals are 1 - alpha (default: the service's alpha, 0.1 = 90%% in "
        "configs/serve.yaml)",
    )
    parser.add_argument(
        "--serve-config",
        default=None,
        metavar="FILE",
        help="the service's serve.yaml: its safety rules, alpha and ranking.max_overlap "
        "apply, so the table says what the service's answers say (default: "
        "$RECOMMENDER_SERVE_CONFIG, else configs/serve.yaml)",
    )


def crisis_rows_first(nothing: str, *, on_spark: bool = False):
    """The ``answer_refused`` of a command with ``--data``, ``--out`` and these options (see
    :mod:`recommender.cli`): the crisis-flagged rows of ``--data`` get their resources beside
    ``--out`` and the refusal says that ``nothing`` was written and where they are.
    ``on_spark``: the file is read as batch-score reads it, on ``--master``."""

    def answer_refused(options, refusal: str) -> str:
        from pipelines.refused import crisis_rows_answered

        return crisis_rows_answered(
            refusal,
            options.data,
            options.out,
            nothing=nothing,
            serve_config=options.serve_config,
            spark_master=options.master if on_spark else None,
        )

    return answer_refused
