"""A store's address as messages, logs and files show it: never its password.

An audit store's URL, the MLflow tracking URI (a database reached directly, or a tracking server
``https://user:password@host``) may hold credentials; whatever names one to a person (an error,
a note, the service log, a backup's manifest) shows it through :func:`shown_location`.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["shown_location", "shown_store"]


def shown_store(url: str | sa.engine.URL) -> str:
    """A store's URL as messages and logs show it: no password, neither the one after the user
    name nor one given as a query parameter (``?password=``, ``sslpassword``, which psycopg
    takes as well).

    >>> shown_store("postgresql+psycopg://svc:secret@db/audit?password=other&sslmode=require")
    'postgresql+psycopg://svc:***@db/audit?password=***&sslmode=require'
    """
    url = sa.engine.make_url(url) if isinstance(url, str) else url
    hidden = {key: "***" for key in url.query if "password" in key.lower()}
    shown = url.update_query_dict(hidden).render_as_string(hide_password=True)
    return shown.replace("=%2A%2A%2A", "=***")  # the query's stars, as the user name's read


def shown_location(uri: str) -> str:
    """Any store's URI as logs show it (an audit store's, the MLflow registry's): as
    :func:`shown_store` shows it, or, for a URI that is not a database URL, what follows its
    last ``@`` (where a user and password would be).

    >>> shown_location("https://ops:secret@mlflow.example.org:5000")
    'https://ops:***@mlflow.example.org:5000'
    >>> shown_location("ops:secret@mlflow.example.org"), shown_location("databricks")
    ('***@mlflow.example.org', 'databricks')
    """
    try:
        return shown_store(uri)
    except (sa.exc.ArgumentError, ValueError):
        head, sep, rest = uri.partition("://")
        if not sep:
            head, rest = "", uri
        return f"{head}{sep}***@{rest.rpartition('@')[2]}" if "@" in rest else uri
