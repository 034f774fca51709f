"""``recommender rollback``: return the champion alias to the previous champion."""

from __future__ import annotations

from recommender.cli import cmd_promote

HELP = "move the champion alias back to the previous champion in the promotion log"

# The models folder: the registry's aliases and the promotion log.
MODELS_FOLDER = "writes"


INTERRUPTED = cmd_promote.INTERRUPTED  # the same registry code moves the alias


def configure(parser) -> None:
    parser.add_argument(
        "--reason", required=True, help="why; recorded verbatim in the promotion log"
    )
    parser.add_argument(
        "--actor", default=None, help="who decides (default: RECOMMENDER_ACTOR or the login name)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="roll back to a version trained under another intervention catalog than the "
        "installed one, or needing request fields the champion does not; the promotion log "
        "records what it overrode",
    )


def run(args) -> int:
    from recommender.registry import rollback

    return cmd_promote.champion_changed(
        lambda: rollback(reason=args.reason, actor=args.actor, force=args.force), _say_rolled_back
    )


def _say_rolled_back(event) -> None:
    from recommender.registry import promotion_log_path

    print(
        f"champion rolled back: version {event.previous_version} -> {event.version} by "
        f"{event.actor} ({event.reason})"
    )
    cmd_promote.said_forced(event)
    print(f"recorded in {promotion_log_path()} and on the model version's tags")
