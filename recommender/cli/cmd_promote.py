"""``recommender promote VERSION``: make a version the champion, by a person's decision."""

from __future__ import annotations

HELP = "make a registered version the champion (a person's decision, with a recorded reason)"

# The models folder: the registry's aliases and the promotion log.
MODELS_FOLDER = "writes"

# recommender.registry holds Ctrl-C and kill off while an alias moves and is recorded.
INTERRUPTED = (
    "a change of champion is made and recorded whole or not at all: `recommender champions` "
    "says which version is the champion"
)


def configure(parser) -> None:
    parser.add_argument("version", help="registered version number of burnout-recommender")
    parser.add_argument(
        "--reason", required=True, help="why; recorded verbatim in the promotion log"
    )
    parser.add_argument(
        "--actor", default=None, help="who decides (default: RECOMMENDER_ACTOR or the login name)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="promote a version that failed the promotion gate, was trained under another "
        "intervention catalog than the installed one, or needs request fields the champion "
        "does not; the promotion log records what it overrode",
    )


def run(args) -> int:
    from recommender.registry import promote

    return champion_changed(
        lambda: promote(args.version, reason=args.reason, actor=args.actor, force=args.force),
        _say_promoted,
    )


def champion_changed(change, say) -> int:
    """Run ``change()`` (a promotion or a rollback, returning its event), then ``say(event)``;
    a stop meanwhile says what it left: the registry says it while the alias moves, nothing
    was changed before, the change is whole after."""
    try:
        event = change()
    except KeyboardInterrupt as interrupt:
        if getattr(interrupt, "left", None) is None:
            interrupt.left = (
                "nothing was changed: stopped before the champion's alias moved; "
                "`recommender champions` says which version is the champion"
            )
        raise
    try:
        say(event)
    except KeyboardInterrupt as interrupt:
        interrupt.left = (
            f"the change was made and recorded whole: champion version "
            f"{event.previous_version or 'none'} -> {event.version}"
        )
        raise
    return 0


def _say_promoted(event) -> None:
    from recommender.registry import promotion_log_path

    before = event.previous_version or "none"
    print(f"champion: version {before} -> {event.version} by {event.actor} ({event.reason})")
    if event.previous_version == event.version:
        # Recorded all the same: a person's endorsement is what the card then tells.
        print(
            f"version {event.version} was already the champion: nothing else changed, and the "
            "service needs no /reload"
        )
    said_forced(event)
    print(f"recorded in {promotion_log_path()} and on the model version's tags")


def said_forced(event) -> None:
    """Print what ``--force`` overrode, one line each (nothing when not forced)."""
    for _, clause in event.forced_over:
        print(f"forced over {clause}")
