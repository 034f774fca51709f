"""Aliases of the registered model, moved only through here so every change is logged."""

from __future__ import annotations

import json
import re

from recommender._locations import shown_location
from recommender._files import signals_held
from recommender.errors import InputError
from recommender.registry._fit import misfits, refuse_misfits
from recommender.registry._intent import complete_interrupted, declare, withdraw
from recommender.registry._lock import registry_lock, store_is_local
from recommender.registry._pending import committed_holder, is_pending, undo_abandoned
from recommender.registry._promotion import (
    TAG_PREFIX,
    PromotionEvent,
    append_events,
    current_actor,
)
from recommender.registry._store import MODEL_NAME, client, few_retries

__all__ = [
    "CHAMPION",
    "CHALLENGER",
    "aliases",
    "move_alias",
    "record_events",
    "tag_events",
    "settle",
    "promotion_history",
    "promote",
    "rollback",
    "rollback_target",
]

CHAMPION = "champion"
CHALLENGER = "challenger"

# Who completes a change stopped midway (its intent declared first), as after a kill -9.
_NEXT = "the next `recommender champions`, `promote` or `rollback`"


def _stopped_midway(event: PromotionEvent, done: list[str]) -> str:
    """What a stop not waited out leaves, by the steps of the change ``done`` so far."""
    before = event.previous_version or "none"
    if "declared" not in done:  # the alias move was never sent
        return (
            f"nothing was changed: stopped before the {event.alias} alias moved (it names "
            f"version {before}); {_NEXT} drops the change declared if the server took it late"
        )
    if "moved" not in done:
        return (
            f"stopped midway through the change, as the {event.alias} alias was moving from "
            f"version {before} to {event.version}: the server may yet move it; {_NEXT} records "
            "it if the alias moved, or drops it if not"
        )
    if "recorded" not in done:
        return (
            f"stopped midway through the change: the {event.alias} alias moved from version "
            f"{before} to {event.version}, not yet recorded; {_NEXT} records it"
        )
    if "withdrawn" not in done:
        return (
            f"the {event.alias} alias moved from version {before} to {event.version} and was "
            f"recorded; {_NEXT} removes the declaration left on the registered model"
        )
    return (
        f"the change was made and recorded whole: the {event.alias} alias moved from version "
        f"{before} to {event.version}"
    )


def _registered(mlflow_client, name):
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_registered_model(name)
    except MlflowException:
        return None


def aliases(name: str = MODEL_NAME, *, mlflow_client=None) -> dict[str, str]:
    """Current ``alias -> version`` of the registered model (empty if it does not exist).

    An alias on a version whose registration has not finished names the version it named
    before (see :mod:`recommender.registry._pending`).
    """
    mlflow_client = mlflow_client or client()
    current = {}
    for alias, number in _moved(name, mlflow_client).items():
        holder = committed_holder(mlflow_client.get_model_version(name, number), alias)
        if holder is not None:
            current[alias] = holder
    return current


def _moved(name, mlflow_client) -> dict[str, str]:
    """``alias -> version`` as the store holds them, a registration under way included."""
    model = _registered(mlflow_client, name)
    return {} if model is None else {k: str(v) for k, v in model.aliases.items()}


def _version(mlflow_client, name, version):
    """The registered version numbered ``version`` (``2``, `` 2`` or ``02``).

    Callers name it by its ``.version``, as MLflow writes it: the promotion log once held a
    champion ``02`` that the history never matched to the alias ``2`` (a rollback "from 2 to
    02", a card saying the alias was moved outside the product).
    """
    from mlflow.exceptions import MlflowException

    text = str(version).strip()
    if re.fullmatch(r"[0-9]+", text) and int(text) > 0:
        try:
            return mlflow_client.get_model_version(name, str(int(text)))
        except MlflowException:
            pass
    numbers, held = registered_versions(mlflow_client, name)
    raise InputError(
        f"model {name!r} has no version {version!r} in the store at "
        f"{shown_location(mlflow_client.tracking_uri)}; accepted: a registered version number "
        f"({numbers})" + (f"; {held}" if held else "")
    )


def registered_versions(mlflow_client, name: str) -> tuple[str, str]:
    """The versions of ``name`` a command may be given, for a refusal to say what it would
    accept: their numbers (``1, 2``, or ``none registered``) and what each alias names
    (``champion is version 2``, empty when no alias is set)."""
    registered = sorted(
        (str(v.version) for v in mlflow_client.search_model_versions(f"name = '{name}'")),
        key=int,
    )
    held = ", ".join(f"{a} is version {v}" for a, v in sorted(_moved(name, mlflow_client).items()))
    return ", ".join(registered) or "none registered", held


def move_alias(
    alias: str,
    version: str,
    *,
    kind: str,
    reason: str,
    actor: str | None = None,
    policy: dict | None = None,
    name: str = MODEL_NAME,
    mlflow_client=None,
    record: bool = True,
    forced: bool = False,
    force: bool = False,
) -> PromotionEvent:
    """Point ``alias`` at ``version`` and (unless ``record=False``) log the change.

    ``champion`` only moves to a version that loads (the service's next ``/reload`` or start
    loads it); otherwise :class:`~recommender.errors.ModelUnavailable` is raised before anything
    changes, whatever ``kind`` or ``forced``. A person's move of ``champion`` (``kind``
    ``promote`` or ``rollback``) to a version that does not fit the service (another catalog,
    new request fields: :mod:`recommender.registry._fit`) is refused unless ``force``.
    The reads, the move and the record hold the store's alias lock
    (:mod:`recommender.registry._lock`); a recorded move is declared first
    (:mod:`recommender.registry._intent`), so a process stopped midway leaves it completable.

    Parameters
    ----------
    alias : str
    version : str
    kind : {"gate", "promote", "rollback"}
    reason : str
        Why; required, recorded verbatim.
    actor : str, optional
        Default :func:`current_actor`.
    policy : dict, optional
        Policy values behind the decision.
    record : bool, default True
        False lets a caller that must stay atomic record several events at its end with
        :func:`record_events`.
    forced : bool, default False
        The caller overrode a failed gate; recorded.
    force : bool, default False
        Move ``champion`` to a version that does not fit the service; what it overrode is
        recorded in the event's ``overrides``.

    Returns
    -------
    PromotionEvent
    """
    if not reason or not reason.strip():
        raise InputError(
            "a reason is required for every alias change (it goes into the "
            'promotion log); pass --reason "..."'
        )
    mlflow_client = mlflow_client or client()
    with registry_lock():
        target = _version(mlflow_client, name, version)
        version = str(target.version)
        before = _moved(name, mlflow_client)
        overrides = []
        if alias == CHAMPION:
            _require_live_run(mlflow_client, target, kind)
            model = _require_loadable(name, version, kind)
            if kind != "gate":  # a training run's gate judged its own fit
                overrides = misfits(model, version, before.get(CHAMPION), name=name)
                if not force:
                    refuse_misfits(
                        overrides, action=_action(version, kind), force_with=_forcing(version, kind)
                    )
        event = PromotionEvent.now(
            model=name,
            alias=alias,
            version=str(version),
            previous_version=before.get(alias),
            kind=kind,
            actor=actor or current_actor(),
            reason=reason.strip(),
            previous_aliases=sorted(a for a, v in before.items() if v == str(version)),
            run_id=target.run_id,
            policy=dict(policy or {}),
            forced=forced or bool(overrides),
            overrides=overrides,
        )
        # Ctrl-C or a kill here waits the few writes out: the change is made and recorded
        # whole, or (stopped before) not made. A tracking server that is down is tried
        # briefly: MLflow's own retries (about 4 min a request) would hold the signals off for
        # many minutes. One that accepts and never answers holds a request to its timeout
        # (120 s), so a stop not done within a second (or a second stop) stops at once: the
        # declared intent makes any point here as safe as a kill -9, whose intent the next
        # promote, rollback or champions completes; what it leaves is said by the steps done.
        # Not a short timeout instead: a slow server's write may land after we gave up on it.
        done = []
        stopped = (lambda: _stopped_midway(event, done)) if record else None
        try:
            with few_retries(), signals_held(second_stops=stopped):
                if record:
                    declare(event, mlflow_client=mlflow_client)
                    done.append("declared")
                mlflow_client.set_registered_model_alias(name, alias, str(version))
                done.append("moved")
                if record:
                    record_events([event], mlflow_client=mlflow_client)
                    done.append("recorded")
                    withdraw(name, mlflow_client=mlflow_client)
                    done.append("withdrawn")
        except KeyboardInterrupt as interrupt:
            # a stop held to the end of the steps, or to a failed request's error: say which
            if record and getattr(interrupt, "left", None) is None:
                interrupt.left = _stopped_midway(event, done)
            raise
        return event


def _forcing(version, kind: str) -> str:
    if kind == "rollback":
        return 'recommender rollback --force --reason "..."'
    return f'recommender promote {version} --force --reason "..."'


def _action(version, kind: str) -> str:
    if kind == "rollback":
        return f"roll back to version {version}"
    return f"make version {version} the champion"


def _require_loadable(name, version, kind: str):
    # The champion is what the service loads; _load imports this module, hence imported here.
    from recommender.registry._load import require_loadable

    return require_loadable(name, str(version), action=_action(version, kind))


def _require_live_run(mlflow_client, target, kind: str) -> None:
    """Refuse a version whose training run was deleted: deleting a run discards it, and
    ``mlflow gc`` then removes its files for good, from under the service."""
    from mlflow.exceptions import MlflowException

    try:
        stage = mlflow_client.get_run(target.run_id).info.lifecycle_stage
    except MlflowException:  # a run that no longer exists at all: its files are checked next
        return
    if stage == "deleted":
        raise InputError(
            f"refusing to {_action(target.version, kind)}: its training run {target.run_id} "
            "was deleted (MLflow keeps it in the trash until `mlflow gc` removes its files); "
            f"restore it first (`mlflow runs restore --run-id {target.run_id}`, with "
            "MLFLOW_TRACKING_URI set to this store) if it is meant to serve. The aliases and "
            "the promotion log are unchanged"
        )


def record_events(events, *, mlflow_client=None) -> None:
    """Write events as model-version tags, then to the JSON-lines log."""
    tag_events(events, mlflow_client=mlflow_client)
    append_events(events)


def tag_events(events, *, mlflow_client=None) -> None:
    """Write events as tags of the versions they moved an alias to."""
    mlflow_client = mlflow_client or client()
    for event in events:
        mlflow_client.set_model_version_tag(
            event.model, event.version, event.tag_key, json.dumps(event.to_dict(), sort_keys=True)
        )


def settle(name: str = MODEL_NAME, *, mlflow_client=None) -> dict[str, str]:
    """Undo the registrations a killed training run left half done (``{version: run_id}``).

    Call holding :func:`registry_lock`. Only a store whose lock every process using it shares
    (a SQLite file, a ``file:`` store) is settled: on a server another machine may be
    registering right now, so nothing is undone there (a pending version is refused instead).
    """
    if not store_is_local():
        return {}
    return undo_abandoned(name, mlflow_client=mlflow_client or client())


def promotion_history(name: str = MODEL_NAME, *, mlflow_client=None) -> list[PromotionEvent]:
    """Every recorded alias change of ``name``, oldest first, read from the registry's tags."""
    mlflow_client = mlflow_client or client()
    if _registered(mlflow_client, name) is None:
        return []
    events = []
    for version in mlflow_client.search_model_versions(f"name='{name}'"):
        for key, value in (version.tags or {}).items():
            if key.startswith(TAG_PREFIX):
                events.append(PromotionEvent(**json.loads(value)))
    return sorted(events, key=lambda e: e.time)


def champion_event(
    version: str, name: str = MODEL_NAME, *, mlflow_client=None
) -> PromotionEvent | None:
    """The last recorded event that made ``version`` the champion (a training run's gate, a
    person's promotion, forced or not, or a rollback), read from the version's tags; ``None``
    when none is recorded (an alias moved outside the product)."""
    mlflow_client = mlflow_client or client(existing=True)
    tags = mlflow_client.get_model_version(name, str(version)).tags or {}
    events = [
        PromotionEvent(**json.loads(value))
        for key, value in tags.items()
        if key.startswith(TAG_PREFIX)
    ]
    made = [e for e in events if e.alias == CHAMPION and e.version == str(version)]
    return max(made, key=lambda e: e.time, default=None)


def rollback_target(history, current: str | None) -> str:
    """The champion before ``current``, replaying promotions as pushes and rollbacks as pops."""
    stack: list[str] = []
    for event in history:
        if event.alias != CHAMPION:
            continue
        if event.kind == "rollback":
            while stack and stack[-1] != event.version:
                stack.pop()
            if not stack:
                stack.append(event.version)
        elif not stack or stack[-1] != event.version:
            stack.append(event.version)
    if current is not None and stack and stack[-1] != current:
        raise InputError(
            f"the champion (version {current}) is not the last champion the promotion log "
            f"records (version {stack[-1]}): the alias was moved outside `recommender "
            "promote`, `rollback` and `train`, or a training run was killed while registering "
            f"it; `recommender promote {stack[-1]} --reason ...` returns to the last recorded "
            "champion"
        )
    if current is None or not stack or len(stack) < 2:
        raise InputError(
            f"there is no earlier champion to roll back to (current champion: {current}; "
            f"champion history: {stack}); use `recommender promote VERSION` instead"
        )
    return stack[-2]


def promote(
    version: str,
    *,
    reason: str,
    actor: str | None = None,
    force: bool = False,
    name: str = MODEL_NAME,
) -> PromotionEvent:
    """Make ``version`` the champion by a person's decision, with the reason logged.

    A version that failed the promotion gate (its policy value was worse than the champion's
    at training time), was trained under another intervention catalog than the installed one,
    or needs request fields the champion does not, is promoted only with ``force=True``, and
    the event records that it was forced and what it overrode.

    Raises
    ------
    InputError
        When the version failed the gate or does not fit the service and ``force`` is not set,
        saying why and what to do.
    ModelUnavailable
        When the version's files cannot be read (deleted, moved); ``force`` does not override
        this, since the service could not load it.
    """
    mlflow_client = client(existing=True)
    with registry_lock():
        version = str(_version(mlflow_client, name, version).version)
        _settled(name, version, mlflow_client)
        complete_interrupted(name, mlflow_client=mlflow_client, command="promote")
        tags = _version(mlflow_client, name, version).tags or {}
        failed = tags.get("gate.passed") == "false"
        if failed and not force:
            # Files that cannot be read are named first: --force would not get past them.
            model = _require_loadable(name, version, "promote")
            # What else --force would override is said now, not after the gate is forced.
            champion = aliases(name, mlflow_client=mlflow_client).get(CHAMPION)
            more = misfits(model, version, champion, name=name)
            verdict = tags.get("gate.reason", "no reason recorded")
            raise InputError(
                f"version {version} failed the promotion gate ({verdict})"
                + "".join(f"; and {m['statement']}" for m in more)
                + "; promote it anyway only as a considered decision, with --force (the "
                "promotion log records that it was forced, and what it overrode)"
            )
        policy = (
            {"gate_passed": False, "gate_reason": tags.get("gate.reason", "")} if failed else None
        )
        return move_alias(
            CHAMPION,
            str(version),
            kind="promote",
            reason=reason,
            actor=actor,
            name=name,
            mlflow_client=mlflow_client,
            policy=policy,
            forced=failed,
            force=force,
        )


def _settled(name, version, mlflow_client) -> None:
    """Settle the store, refusing ``version`` if its registration was undone or is unfinished."""
    undone = settle(name, mlflow_client=mlflow_client)
    if str(version) in undone:
        raise InputError(
            f"version {version} was left half registered by training run {undone[str(version)]}"
            ", which was stopped before it finished (no card, no promotion record); it has "
            "been removed and the aliases are as they were. Train again (`recommender train`)"
        )
    if is_pending(_version(mlflow_client, name, version)):
        raise InputError(
            f"version {version} is still being registered by its training run (or that run "
            "was stopped, on a machine sharing this store, before it finished): it has no card "
            "or promotion record yet; promote it once `recommender train` has printed its "
            "version"
        )


def rollback(
    *, reason: str, actor: str | None = None, force: bool = False, name: str = MODEL_NAME
) -> PromotionEvent:
    """Return ``champion`` to the version that held it before the current one.

    Refused, as :func:`promote` refuses, for a version whose run was deleted or whose files
    are gone, and without ``force`` for one that does not fit the service (another catalog,
    request fields the champion does not need).
    """
    mlflow_client = client(existing=True)
    # The champion and the history read, and the alias moved, with no other change between.
    with registry_lock():
        settle(name, mlflow_client=mlflow_client)
        complete_interrupted(name, mlflow_client=mlflow_client, command="rollback")
        current = aliases(name, mlflow_client=mlflow_client).get(CHAMPION)
        target = rollback_target(promotion_history(name, mlflow_client=mlflow_client), current)
        return move_alias(
            CHAMPION,
            target,
            kind="rollback",
            reason=reason,
            actor=actor,
            name=name,
            mlflow_client=mlflow_client,
            force=force,
        )
