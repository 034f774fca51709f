"""The intervention catalog file as the service reads it: at start, on ``/reload`` and when a
worker follows another's /reload (:class:`~recommender.service._serving.Serving`).

A catalog the checks refuse is said in the API's shape (each entry, field and value, and what
is accepted) and changes nothing served; its digest (``file_digest``) tells a follower whether
a /reload of the same model version was for an edited catalog.
"""

from __future__ import annotations

from recommender.errors import InputError

__all__ = ["catalog_error", "catalog_problems", "file_digest"]


def catalog_error(error: Exception) -> str:
    """Why the catalog did not load, as the log, /reload and the card say it."""
    return f"the intervention catalog could not be loaded ({type(error).__name__}: {error})"


def catalog_problems(error: Exception) -> list[dict]:
    """A refused catalog's problems in the API's shape: each names the entry and field
    (``catalog arms[1] (coaching).cost_per_person``), the value found and what is accepted."""
    found = getattr(error, "problems", None) or []
    problems = [
        {
            "field": "catalog "
            + (f"{p['entry']}.{p['field']}" if p.get("field") else str(p.get("entry"))),
            "value": p.get("value"),
            "accepted": p.get("accepted", ""),
            "message": p.get("message", ""),
        }
        for p in found
        if isinstance(p, dict) and "entry" in p
    ]
    return problems or [
        {
            "field": "catalog",
            "value": None,
            "accepted": "a catalog file that loads",
            "message": str(error),
        }
    ]


def file_digest() -> str | None:
    """The digest of the catalog file as it is now (``None``: it cannot be read)."""
    from recommender.catalog import catalog_sha256
    from recommender.paths import config_path

    try:
        return catalog_sha256(config_path("interventions.yaml"))
    except (OSError, InputError):
        return None
