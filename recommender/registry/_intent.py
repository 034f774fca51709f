"""An alias change stopped midway: the alias moved, its record never written.

MLflow moves an alias and writes a tag in separate calls, so a process killed between them
(``kill -9``, a lost machine) would leave the champion changed with nobody recorded as having
changed it, and the next ``rollback`` would find the history and the alias disagreeing. So the
change is first written down as an intent, a tag of the registered model holding the event
(:func:`declare`), then the alias moves, then the event is recorded (version tag, then the
JSON-lines log) and the intent removed (:func:`withdraw`).

An intent still there at the next alias change (or ``recommender champions``) is one whose
process stopped (:func:`complete_interrupted`, called holding the store's lock): if the alias
names the intended version the change happened, and its record is completed, marked
``recorded_late``; if not, the process stopped before the move, nothing changed, and the
intent is dropped.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from recommender.registry._lock import registry_lock
from recommender.registry._promotion import PromotionEvent, append_events, read_promotion_log

__all__ = ["INTENT_TAG", "declare", "withdraw", "complete_interrupted"]

_log = logging.getLogger("recommender.registry")

# A registered-model tag (the promotion records are version tags named ``promotion.<time>...``).
INTENT_TAG = "alias_change.intended"


def declare(event: PromotionEvent, *, mlflow_client) -> None:
    """Write ``event`` down as the change about to be made, before its alias moves."""
    mlflow_client.set_registered_model_tag(
        event.model, INTENT_TAG, json.dumps(event.to_dict(), sort_keys=True)
    )


def withdraw(name: str, *, mlflow_client) -> None:
    """The change is recorded: the intent goes (already gone is fine: on a store on a server,
    whose lock holds on one machine only, another machine's command may have taken it)."""
    import contextlib

    from mlflow.exceptions import MlflowException

    with contextlib.suppress(MlflowException):
        mlflow_client.delete_registered_model_tag(name, INTENT_TAG)


def complete_interrupted(name: str, *, mlflow_client, command: str) -> PromotionEvent | None:
    """Complete the record of an alias change whose process stopped after moving the alias;
    returns the event recorded (``None``: nothing was interrupted, or it stopped before the
    move and nothing changed).

    Only a store holding an intent takes the store's lock (re-entrant: promote and rollback
    hold it already), so a reader such as ``champions`` needs no lock file in the common case.
    ``command`` (``promote``, ``rollback``, ``champions``) is named in ``recorded_late``.
    """
    if _intent(name, mlflow_client) is None:
        return None
    with registry_lock():
        return _complete(name, mlflow_client, command)


def _intent(name, mlflow_client):
    """``(registered model, the intent's JSON)``, or None when no intent is there."""
    from mlflow.exceptions import MlflowException

    try:
        registered = mlflow_client.get_registered_model(name)
    except MlflowException:
        return None
    raw = (registered.tags or {}).get(INTENT_TAG)
    return None if raw is None else (registered, raw)


def _complete(name, mlflow_client, command: str) -> PromotionEvent | None:
    found = _intent(name, mlflow_client)  # again, holding the lock: another may have done it
    if found is None:
        return None
    registered, raw = found
    try:
        intended = PromotionEvent(**json.loads(raw))
    except (TypeError, ValueError):  # not ours to read: said by the disagreement it leaves
        withdraw(name, mlflow_client=mlflow_client)
        return None
    if str(registered.aliases.get(intended.alias)) != intended.version:
        withdraw(name, mlflow_client=mlflow_client)  # stopped before the move: nothing changed
        return None
    tags = mlflow_client.get_model_version(name, intended.version).tags or {}
    recorded = tags.get(intended.tag_key)
    if recorded is not None:  # stopped between the tag and the log line: the tag's event
        event = PromotionEvent(**json.loads(recorded))
    else:
        when = datetime.now(timezone.utc).isoformat(timespec="seconds")
        event = PromotionEvent(
            **{
                **intended.to_dict(),
                "recorded_late": f"{when}, by `recommender {command}`: the process that moved "
                "the alias was stopped before it recorded the change",
            }
        )
        # _aliases writes the records and calls this module: imported when needed.
        from recommender.registry._aliases import tag_events

        tag_events([event], mlflow_client=mlflow_client)
    logged = {(e.time, e.alias, e.version) for e in read_promotion_log()}
    if (event.time, event.alias, event.version) not in logged:
        append_events([event])
    withdraw(name, mlflow_client=mlflow_client)
    _log.warning(
        "the %s change of %s at %s (version %s -> %s, by %s: %s) was stopped before it was "
        "recorded; its record is completed now",
        event.alias,
        name,
        event.time,
        event.previous_version or "none",
        event.version,
        event.actor,
        event.reason,
    )
    return event
