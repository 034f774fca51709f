"""Options of the commands that write scored tables: the table says what the service's
answers say, so its interval level and ranking threshold come from the service's settings."""

from __future__ import annotations


def add_service_options(parser) -> None:
    """``--alpha`` (default: the service's) and ``--serve-config`` (the service's file)."""
    parser.add_argument(
        "--alpha",
        type=float,
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
