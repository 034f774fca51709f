"""Where a SQLite database URL keeps its file.

SQLAlchemy's ``make_url(...).database`` is the text after ``sqlite:///``: a path, ``:memory:``,
nothing, or a SQLite URI filename (``file:/path/audit.db`` with ``?uri=true``, for example
``mode=ro`` for a read-only store). Every part that creates a store's folder, checks that a log
exists or puts a lock file beside it reads the file from :func:`sqlite_file`, so a URI filename
is never taken for a relative folder named ``file:``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa

__all__ = ["sqlite_file"]

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
