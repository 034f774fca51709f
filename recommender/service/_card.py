"""Finding the served model's card: ``<models_dir>/cards/<version>/``, else the MLflow run."""

from __future__ import annotations

import tempfile
from pathlib import Path

__all__ = ["read_card", "CARD_ARTIFACT_DIR"]

# Where the training pipeline logs the card inside the run's artifacts.
CARD_ARTIFACT_DIR = "card"


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
    try:
        from recommender.registry import MODEL_NAME, client

        mlflow_client = client()
        run_id = mlflow_client.get_model_version(MODEL_NAME, version).run_id
        with tempfile.TemporaryDirectory() as folder:
            path = mlflow_client.download_artifacts(run_id, f"{CARD_ARTIFACT_DIR}/{filename}",
                                                    folder)
            return Path(path).read_text(encoding="utf-8")
    except Exception:  # no registry, no run, no artifact: the caller answers 404
        return None
