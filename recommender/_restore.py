"""Restoring a backup: what goes where, what is refused before anything changes, and what the
operator is told.

:func:`restore` reads the backup's manifest (:func:`recommender._backup.read_manifest`, which
checks every file against it), plans each copy's place (the models folder, an audit store or
an MLflow store kept elsewhere), refuses a store a process holds open (:func:`held_open`), counts
the erasures the replaced store records after the backup, and has
:mod:`recommender._restore_swap` put the files in place, all or nothing. Backing up is
:mod:`recommender._backup`, which imports these names back, so that they are still found there.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from recommender._locations import shown_location
from recommender._restore_swap import finish_interrupted_restore, is_sqlite, put_in_place
from recommender.errors import InputError


@dataclass
class RestoreReport:
    """What a restore replaced: every file it moved aside (``moved_aside``), the SQLite
    databases among them (``databases_aside``, each with its ``-wal``/``-shm`` beside it if
    any), the erasures the replaced audit store records after the backup, and warnings;
    ``stamp`` names its files (``<name>.before-restore-<stamp>``)."""

    stamp: str
    moved_aside: list[Path]
    erasures_after: int | None
    notes: list[str] = field(default_factory=list)
    databases_aside: list[Path] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)


def processes_holding(path: Path) -> list[int]:
    """Ids of this machine's processes (those this user may see) holding ``path`` open, or its
    write-ahead log; empty where /proc cannot tell."""
    wanted = {str(path), f"{path}-wal", f"{path}-shm"}
    holders = []
    for fds in Path("/proc").glob("[0-9]*/fd"):
        try:
            links = [os.readlink(fd) for fd in fds.iterdir()]
        except OSError:
            continue
        if wanted.intersection(links):
            holders.append(int(fds.parent.name))
    return sorted(holders)


def held_open(paths) -> list[str]:
    """Each SQLite database among ``paths`` that a process holds open, as ``<path> (process
    <ids>)``: what a restore, and the finishing of one, must not rename."""
    busy = []
    for path in paths:
        if path.is_file() and is_sqlite(path):
            holders = processes_holding(path)
            if holders:
                busy.append(f"{path} (process {', '.join(map(str, holders))})")
    return busy


def _erasures_in(database: Path, since_id: int | None) -> int | None:
    """How many erasures the store at ``database`` records after ``since_id``; None when it
    cannot be read."""
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            row = connection.execute(
                "SELECT count(*) FROM erasures WHERE id > ?", (since_id or 0,)
            ).fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return None
    return int(row[0])


def restore(backup: Path, config, *, tracking_uri: str | None = None) -> RestoreReport:
    """Put the backup at ``backup`` back where ``config`` names: its models folder, its audit
    store when it is a SQLite file, and an MLflow store the backup took from outside the models
    folder when ``tracking_uri`` names a SQLite file (otherwise a note names the copy to put
    back by hand). What is replaced is moved aside, never deleted; a database a process holds
    open (a running service) is refused before anything changes."""
    # Here, not at the top: _backup imports this module's names back for its callers.
    from recommender._backup import _sqlite_store, read_manifest
    from recommender.service import sqlite_file

    backup = Path(backup)
    models = Path(config.models_dir).resolve()
    recovered = finish_interrupted_restore(models)
    manifest = read_manifest(backup)
    # (copy in the backup, where it goes): the files the manifest names and read_manifest
    # checked, not whatever else the folder holds
    plan: list[tuple[Path, Path]] = []
    for entry in sorted(manifest.get("files", []), key=lambda entry: entry["path"]):
        inside = Path(entry["path"])
        if inside.parts[0] == "models":
            plan.append((backup / inside, models.joinpath(*inside.parts[1:])))
    audit = manifest.get("audit_store") or {}
    live_audit = sqlite_file(config.audit_store)
    live_audit = live_audit.resolve() if live_audit is not None else None
    audit_copy = backup / audit["copy"] if audit.get("copy") else None
    if audit_copy is not None and not audit["copy"].startswith("models/"):
        if live_audit is None:
            raise InputError(
                "the backup holds a SQLite audit store, but the settings name a database "
                "server's: restore it there with its own tool; nothing was restored"
            )
        plan.append((audit_copy, live_audit))
    elif audit_copy is not None and live_audit is not None:
        # The store was in the models folder; the settings may now name another file.
        inside = backup / audit["copy"]
        target = models / Path(audit["copy"]).relative_to("models")
        if target != live_audit:
            plan = [(s, t) for s, t in plan if s != inside]
            plan.append((inside, live_audit))

    notes = []
    registry_copy = next(
        (
            backup / f["path"]
            for f in manifest.get("files", [])
            if f["path"].startswith("registry/")
        ),
        None,
    )
    if registry_copy is not None:
        live_registry = _sqlite_store(tracking_uri)
        taken = (manifest.get("registry") or {}).get("uri")  # an older backup's: with its password
        if live_registry is None:
            notes.append(
                f"the backup holds the MLflow store {registry_copy}, taken from "
                f"{shown_location(taken) if taken else taken}; the registry now is "
                f"{shown_location(tracking_uri) if tracking_uri else 'not named here'}, not a SQLite file, so it was not "
                "restored: put that file back by hand where the registry is kept"
            )
        else:
            plan = [(s, t) for s, t in plan if t != live_registry]
            plan.append((registry_copy, live_registry))

    busy = held_open([target for _, target in plan])
    if busy:
        raise InputError(
            "a running process holds open "
            + "; ".join(busy)
            + ": stop the service (and any command using the store) before restoring; "
            "nothing was restored"
        )

    erasures_after = None
    if live_audit is not None and live_audit.is_file() and audit.get("kind") == "sqlite":
        since = (audit.get("erasures") or {}).get("last_id")
        erasures_after = _erasures_in(live_audit, since)
    if audit.get("kind") == "sqlite":
        taken = manifest.get("taken_at")
        if erasures_after:
            notes.append(
                f"the replaced audit store records {erasures_after} erasure(s) after this "
                f"backup ({taken}): they are not in the restored store. Redo each now with "
                "`recommender audit erase --ids-file FILE` and the ids it was given (erasing "
                "again changes nothing for people already erased); "
                "`recommender audit export --table erasures` lists what the restored store "
                "records"
            )
        elif erasures_after is None:
            notes.append(
                f"no readable audit store was replaced, so the erasures done after this "
                f"backup ({taken}) cannot be counted here: redo every `recommender audit "
                "erase` run since then, with the ids it was given, before serving"
            )
    if manifest.get("salt") is None:
        notes.append(
            "this backup holds no salt file: the service needs the salt the store was "
            "written with (RECOMMENDER_AUDIT_SALT, the secrets folder's audit_salt, or "
            "serve.yaml)"
        )
    # Last: a stop once its files are swapped in says the restore finished (put_in_place).
    stamp = _new_stamp(plan)
    moved, databases = put_in_place(plan, stamp, models=models, backup=backup)
    return RestoreReport(
        stamp=stamp,
        moved_aside=moved,
        erasures_after=erasures_after,
        notes=notes,
        databases_aside=databases,
        recovered=recovered,
    )


def _new_stamp(plan: list[tuple[Path, Path]]) -> str:
    """The time that names this restore's files, one that no earlier restore's moved-aside
    file bears (two restores within a second: the second would rename over the first's)."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    while True:
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        if not any(
            target.with_name(f"{target.name}.before-restore-{stamp}").exists() for _, target in plan
        ):
            return stamp
        now += timedelta(seconds=1)
