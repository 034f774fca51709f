"""Where a SQLite database URL keeps its file.

SQLAlchemy's ``make_url(...).database`` is the text after ``sqlite:///``: a path, ``:memory:``,
nothing, or a SQLite URI filename (``file:/path/audit.db`` with ``?uri=true``, for example
``mode=ro`` for a read-only store). Every part that creates a store's folder, checks that a log
exists or puts a lock file beside it reads the file from :func:`sqlite_file`, so a URI filename
is never taken for a relative folder named ``file:``. And the file an open store writes to
is watched (:func:`watch_file`): a file removed or replaced is never written again.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import sqlalchemy as sa

__all__ = ["sqlite_file", "sqlite_beside", "watch_file", "AuditFileReplaced"]

_TRUE = {"1", "true", "yes", "on"}


def sqlite_file(url: str | sa.engine.URL) -> Path | None:
    """The database file of a SQLite URL; None for an in-memory database or another dialect.

    >>> sqlite_file("sqlite:///models/audit.db")
    PosixPath('models/audit.db')
    >>> sqlite_file("sqlite:///file:/srv/audit.db?mode=ro&uri=true")
    PosixPath('/srv/audit.db')
    >>> sqlite_file("sqlite://") is None, sqlite_file("postgresql://h/db") is None
    (True, True)
    """
    url = sa.engine.make_url(url) if isinstance(url, str) else url
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:":
        return None
    uri = str(url.query.get("uri", "")).lower() in _TRUE
    if uri and database.startswith("file:"):
        if str(url.query.get("mode", "")).lower() == "memory":
            return None
        path = unquote(urlsplit(database).path)
        return Path(path) if path and path != ":memory:" else None
    return Path(database)


def sqlite_beside(url: str, folder: Path) -> str:
    """``url`` with a relative SQLite file read in ``folder`` (that of the config file that
    names it); any other URL unchanged.

    >>> sqlite_beside("sqlite:///audit.db", Path("/srv/program"))
    'sqlite:////srv/program/audit.db'
    >>> sqlite_beside("sqlite:///file:audit.db?mode=ro&uri=true", Path("/srv"))
    'sqlite:///file:/srv/audit.db?mode=ro&uri=true'
    >>> sqlite_beside("sqlite:////var/audit.db", Path("/srv")), sqlite_beside("sqlite://", Path("/srv"))
    ('sqlite:////var/audit.db', 'sqlite://')
    """
    parsed = sa.engine.make_url(url)
    database = sqlite_file(parsed)
    if database is None or database.is_absolute():
        return url
    path = Path(folder) / database
    if parsed.database.startswith("file:"):  # a SQLite URI filename: its path part, quoted
        path = "file:" + quote(str(path))
    _, ask, query = url.partition("?")
    return f"{parsed.drivername}:///{path}{ask}{query}"


class AuditFileReplaced(RuntimeError):
    """The audit store's SQLite file is no longer the one the service opened."""

    remedy = "restart the service"


def watch_file(engine: sa.Engine, database: Path):
    """Refuse every transaction once ``database`` is not the file first opened; returns the
    check (raises :class:`AuditFileReplaced`).

    SQLite's open connections keep writing to a deleted file, so every later record would be
    lost while its answer said it was in the audit log; a file put in its place (an empty one,
    a restored copy) is another store. One ``stat`` per transaction.
    """
    opened: list = []

    def check(*_args) -> None:
        try:
            status = os.stat(database)
            found = (status.st_dev, status.st_ino)
        except OSError:
            found = None
        if not opened and found is not None:
            opened.append(found)
        elif found is None or found != opened[0]:
            raise AuditFileReplaced(
                f"the audit database file {database} was removed or replaced after the "
                "service opened it; nothing more is written there (restart the service to "
                "open the store now at that path)"
            )

    sa.event.listen(engine, "connect", check)
    sa.event.listen(engine, "begin", check)
    return check
