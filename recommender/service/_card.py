"""Finding the served model's card: ``<models_dir>/cards/<version>/``, else the MLflow run."""

from __future__ import annotations

import tempfile
from pathlib import Path

__all__ = ["read_card"]


def read_card(models_dir: Path, version: str, filename: str) -> str | None:
    """The text of ``card.html`` or ``card.json`` for a registered version, or ``None``.

    The local copy written by the pipeline wins; when it is missing (a service on another
    machine than the training run), the file is fetched from the run's MLflow artifacts.
    """
    local = Path(models_dir) / "cards" / str(version) / filename
    if local.is_file():
        return local.read_text(encoding="utf-8")
    return _from_registry(str(version), filename)


def _from_registry(version: str, filename: str) -> str | None:
    from recommender.errors import InputError
    from recommender.registry import fetch_card

    try:
        with tempfile.TemporaryDirectory(prefix="recommender-card-") as folder:
            path = fetch_card(version, folder) / filename
            return path.read_text(encoding="utf-8") if path.is_file() else None
    except (InputError, OSError):  # no such version, no card logged: the caller answers 404
        return None
