"""Backing up and restoring the product's state: the models folder (MLflow's embedded store and
artifacts, cards, the salt file, the training key, the promotion log), the audit store and the
configs.

A plain ``cp -r`` of a folder whose SQLite databases a service writes is not a backup: the
write-ahead log (``-wal``) holds the committed rows not yet checkpointed into the file, and the
copy of the file and of its log are not taken at one moment. Each SQLite database is therefore
copied with SQLite's online backup API, which reads one consistent snapshot while the service
goes on writing; every other file is copied as it is. A manifest records what was copied (size
and sha256 of each file), when, the audit store's schema revision and erasures, and the champion.

Restore puts a backup back; it refuses to replace a database that a process of this machine
holds open (a running service), and moves what it replaces aside rather than deleting it; it
copies every file beside its place first, so that it replaces all or nothing.
Erasures done after the backup was taken are not in it: restore says how many the store it
replaces records, and they are redone by running ``recommender audit erase`` again with the
same ids (erasing twice changes nothing the second time). Restoring is in
:mod:`recommender._restore`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from recommender._locations import shown_location
from recommender._restore import RestoreReport, held_open, processes_holding, restore
from recommender._restore_swap import JOURNAL, finish_interrupted_restore, is_sqlite, make_durable
from recommender.errors import InputError

__all__ = [
    "MANIFEST",
    "BackupReport",
    "RestoreReport",
    "back_up",
    "copy_sqlite",
    "held_open",
    "processes_holding",
    "read_manifest",
    "restore",
]

MANIFEST = "manifest.json"
# Never copied: SQLite's side files (the backup API reads through them), lock files, BentoML's
# home (the workers' metrics of a run), and the files commands write for the operator.
_SKIPPED_SUFFIXES = ("-wal", "-shm", "-journal", ".lock")
_SKIPPED_FOLDERS = ("bentoml", "work")
_RESTORE_FILES = (JOURNAL, ".restoring-")


@dataclass
class BackupReport:
    folder: Path
    manifest: dict
    notes: list[str] = field(default_factory=list)
    # what finishing or undoing an earlier restore that was killed did, first
    recovered: list[str] = field(default_factory=list)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy the SQLite database ``source`` to ``target`` (a new file) as one consistent
    snapshot, with the rows its write-ahead log holds, while others go on writing it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # Read-only: a backup must never create or change the store it reads.
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        writer = sqlite3.connect(target)
        try:
            reader.backup(writer)
            # One self-contained file: no write-ahead log beside it.
            writer.execute("PRAGMA journal_mode=DELETE")
            verdict = writer.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            writer.close()
    finally:
        reader.close()
    os.chmod(target, os.stat(source).st_mode & 0o777)
    if verdict != "ok":
        raise InputError(
            f"the database {source} fails SQLite's integrity check ({verdict}); nothing "
            "usable was backed up from it: restore it from an earlier backup"
        )


def _copy_tree(source: Path, target: Path, files: list[dict], top: Path, *, root=True) -> None:
    """Copy the folder ``source`` into ``target``: SQLite databases by the backup API, other
    files as they are, recording each copied file (its path relative to ``top``)."""
    for entry in sorted(source.iterdir()):
        if entry.is_symlink():
            continue
        if entry.is_dir():
            if not (root and entry.name in _SKIPPED_FOLDERS):
                _copy_tree(entry, target / entry.name, files, top, root=False)
            continue
        if not entry.is_file() or entry.name.endswith(_SKIPPED_SUFFIXES):
            continue
        if entry.name.startswith(_RESTORE_FILES):  # a restore's, not the product's state
            continue
        destination = target / entry.name
        destination.parent.mkdir(parents=True, exist_ok=True)
        if is_sqlite(entry):
            copy_sqlite(entry, destination)
            how = "sqlite backup API"
        else:
            shutil.copy2(entry, destination)
            how = "copy"
        files.append(_described(destination, root=top, how=how))


def _described(path: Path, *, root: Path, how: str) -> dict:
    return {
        "path": str(path.relative_to(root)),
        "bytes": path.stat().st_size,
        "sha256": _sha256(path),
        "how": how,
    }


def _audit_facts(database: Path) -> dict:
    """Schema revision and erasures of a SQLite audit store (a copy: read-only)."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        tables = {n for (n,) in connection.execute("SELECT name FROM sqlite_master")}
        revision = None
        if "recommender_schema_version" in tables:
            row = connection.execute("SELECT version_num FROM recommender_schema_version")
            revision = (row.fetchone() or (None,))[0]
        erasures = {"count": 0, "last_id": None, "last_at": None}
        if "erasures" in tables:
            count, last_id, last_at = connection.execute(
                "SELECT count(*), max(id), max(erased_at) FROM erasures"
            ).fetchone()
            erasures = {"count": count, "last_id": last_id, "last_at": last_at}
        return {"schema_revision": revision, "erasures": erasures}
    finally:
        connection.close()


def _champion(database: Path) -> str | None:
    """The version the champion alias names in a copy of MLflow's SQLite store.

    Read from the copy with SQLite, read-only, not through :mod:`recommender.registry`: its
    client opens the store that the tracking URI names (the live one, whose champion a
    promotion may move while the backup runs; pointing it at the copy means swapping the
    process-wide URI), and MLflow opening the copy may write it after its sha256 is recorded.
    The model's and the alias's names are the registry's own.
    """
    from recommender.registry import CHAMPION, MODEL_NAME

    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            row = connection.execute(
                "SELECT version FROM registered_model_aliases WHERE alias = ? AND name = ?",
                (CHAMPION, MODEL_NAME),
            ).fetchone()
        finally:
            connection.close()
    except sqlite3.Error:  # not (yet) an MLflow store: no champion to record
        return None
    return None if row is None else str(row[0])


def _sqlite_store(tracking_uri: str | None) -> Path | None:
    """The file of an MLflow store that ``tracking_uri`` names as SQLite, else None."""
    from recommender.service import sqlite_file

    if not tracking_uri or not tracking_uri.startswith("sqlite"):
        return None
    database = sqlite_file(tracking_uri)
    return None if database is None else database.resolve()


def _checked_empty_target(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        what = "a file" if not folder.is_dir() else "a folder that is not empty"
        if folder.is_dir() and not (folder / MANIFEST).exists():
            what += (
                f" and without {MANIFEST} (a backup stopped midway leaves such a folder: remove it)"
            )
        raise InputError(
            f"--to {folder}: {what}; accepted: a new or empty folder (a backup never "
            "overwrites another)"
        )


def back_up(config, folder: Path, *, tracking_uri: str, configs: Path | None) -> BackupReport:
    """Back up the state that ``config`` (a :class:`~recommender.service.ServeConfig`) names
    into ``folder``, which must be new or empty; returns what was written and what was not."""
    from recommender import __version__
    from recommender.service import AUDIT_TABLE_NAMES, sqlite_file

    folder = Path(folder)
    _checked_empty_target(folder)
    models = Path(config.models_dir).resolve()
    if not models.is_dir():
        raise InputError(f"models folder {models}: does not exist; nothing to back up")
    # Never a copy of a folder a killed restore left half swapped.
    recovered = finish_interrupted_restore(models)
    taken_at = datetime.now(timezone.utc)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)  # it holds the salt and the audit log
    files: list[dict] = []
    notes: list[str] = []
    _copy_tree(models, folder / "models", files, folder)

    audit: dict = {"url": None}
    store = config.audit_store
    database = sqlite_file(store)
    if database is not None:
        database = database.resolve()
        if database.parent == models or models in database.parents:
            copied = folder / "models" / database.relative_to(models)
        elif database.is_file():
            copied = folder / "audit" / database.name
            copy_sqlite(database, copied)
            files.append(_described(copied, root=folder, how="sqlite backup API"))
        else:
            copied = None
        if copied is not None and copied.is_file():
            audit = {
                "kind": "sqlite",
                "source": str(database),
                "copy": str(copied.relative_to(folder)),
            }
            audit.update(_audit_facts(copied))
        else:
            audit = {"kind": "sqlite", "source": str(database), "copy": None}
            notes.append(f"no audit store at {database} yet: nothing of it to back up")
    else:
        audit = {"kind": "database server", "copy": None}
        notes.append(
            "the audit store is on a database server: back it up with its own tool, e.g. "
            "pg_dump --format=custom --table "
            + " --table ".join(AUDIT_TABLE_NAMES)
            + " (this backup holds the models folder and configs only)"
        )

    # the manifest says where the registry was, never its password: a backup travels
    registry = {"uri": shown_location(tracking_uri), "champion": None}
    mlflow_db = _sqlite_store(tracking_uri)
    if mlflow_db is not None:
        if models in mlflow_db.parents:
            copied = folder / "models" / mlflow_db.relative_to(models)
        else:
            copied = folder / "registry" / mlflow_db.name
            copy_sqlite(mlflow_db, copied)
            files.append(_described(copied, root=folder, how="sqlite backup API"))
            notes.append(
                f"the MLflow store {mlflow_db} is outside the models folder: its database "
                "is backed up under registry/, its artifacts are wherever its runs name"
            )
        if copied.is_file():
            registry["champion"] = _champion(copied)
    else:
        notes.append(
            f"the MLflow registry {shown_location(tracking_uri)} is not a SQLite file: back it up where it "
            "is kept (the tracking server's database and artifact store)"
        )

    if configs is not None and Path(configs).is_dir():
        shutil.copytree(configs, folder / "configs")
        for path in sorted((folder / "configs").rglob("*")):
            if path.is_file():
                files.append(_described(path, root=folder, how="copy"))
    if config.source and Path(config.source).is_file():
        target = folder / "serve-config" / Path(config.source).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(config.source, target)
        files.append(_described(target, root=folder, how="copy"))

    salt = "models/audit.salt" if (folder / "models" / "audit.salt").is_file() else None
    if salt is None:
        notes.append(
            "the audit salt is not in the models folder (an environment variable, the secrets "
            "folder or serve.yaml gives it): keep it with this backup, apart from it, or the "
            "restored store's hashes link to no one"
        )
    manifest = {
        "format": 1,
        "taken_at": taken_at.isoformat(),
        "recommender_version": __version__,
        "models_dir": str(models),
        "audit_store": audit,
        "registry": registry,
        "salt": salt,
        "files": files,
        "notes": notes,
    }
    _write_manifest(folder, manifest)
    return BackupReport(folder=folder, manifest=manifest, notes=notes, recovered=recovered)


def _write_manifest(folder: Path, manifest: dict) -> None:
    """Write the manifest last, whole, after every file it names is on disk: it is what makes
    the folder a backup. A backup killed (or a machine stopped) before this has none, and
    restore refuses it; a temporary that a kill left is not named ``manifest.json``."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            make_durable(path)
    temporary = folder / f".{MANIFEST}.tmp"
    with open(temporary, "w") as handle:
        handle.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, folder / MANIFEST)
    make_durable(folder)


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(
            f"--restore {folder}: no {MANIFEST}, which `recommender backup --to` writes last: "
            "not a backup, or one stopped before it finished; nothing was restored; accepted: "
            "a folder `recommender backup --to` wrote to the end"
        ) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not the JSON a backup writes ({error})") from None
    for entry in manifest.get("files", []):
        copied = Path(folder) / entry["path"]
        if not copied.is_file() or copied.stat().st_size != entry["bytes"]:
            raise InputError(
                f"backup {folder}: {entry['path']} is missing or not the size the manifest "
                "records; nothing was restored"
            )
        if _sha256(copied) != entry["sha256"]:
            raise InputError(
                f"backup {folder}: {entry['path']} does not match its sha256 in the manifest "
                "(changed or damaged since the backup); nothing was restored"
            )
    return manifest
