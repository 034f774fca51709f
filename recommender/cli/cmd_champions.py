"""``recommender champions``: every change of the champion, oldest first, as the registry has it."""

from __future__ import annotations

HELP = "list every change of the champion: when, which version, by a gate or a person, and why"

# The models folder: completes a promotion stopped midway, then reads the registry.
MODELS_FOLDER = "writes"


def configure(parser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per change, as the promotion log"
    )


def run(args) -> int:
    import json

    from recommender.registry import (
        CHAMPION,
        MODEL_NAME,
        aliases,
        champion_concerns,
        client,
        complete_interrupted,
        promotion_history,
    )

    # Read from the versions' tags, which a registry on a server keeps for everyone (the
    # promotion log is a file of the machine that made the change).
    store = client(existing=True)
    # A change stopped midway is completed before the history is read.
    complete_interrupted(MODEL_NAME, mlflow_client=store, command="champions")
    changes = [e for e in promotion_history(mlflow_client=store) if e.alias == CHAMPION]
    if args.json:
        for event in changes:
            print(json.dumps(event.to_dict(), sort_keys=True))
        return 0
    if not changes:
        print("no champion recorded in this store yet")
        return 0
    for event in changes:
        how = {"gate": "by its training run's gate", "rollback": "rolled back to by"}.get(
            event.kind, "promoted by"
        )
        who = "" if event.kind == "gate" else f" {event.actor}"
        forced = f" OVER {' AND '.join(_labels(event))} (--force)" if event.forced else ""
        late = f" [recorded late: {event.recorded_late}]" if event.recorded_late else ""
        print(
            f"{event.time[:19].replace('T', ' ')} UTC  version {event.version} "
            f"(was {event.previous_version or 'none'}), {how}{who}{forced}: {event.reason}{late}"
        )
    now = aliases(mlflow_client=store).get(CHAMPION)
    print(f"champion now: version {now or 'none'}")
    for concern in champion_concerns(MODEL_NAME, mlflow_client=store):
        print(f"warning: {concern}")
    return 0


def _labels(event) -> list[str]:
    """What ``--force`` overrode, in capitals, a few words each."""
    labels = {
        "gate": "A FAILED GATE",
        "catalog": "ANOTHER CATALOG",
        "request_fields": "NEW REQUEST FIELDS",
    }
    return [labels.get(code, code.upper()) for code, _ in event.forced_over]
