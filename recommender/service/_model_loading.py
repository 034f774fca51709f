"""Loading the served model from the registry: the champion at start, a version another
worker announced on /reload, each within seconds when the tracking server is down (MLflow's
own retries would wait minutes, and a starting worker answers nothing, crisis requests
included, until its load gives up).
"""

from __future__ import annotations

import os

__all__ = ["give_up_on_registry_soon", "load_champion_model", "load_version_model"]


# MLflow tries a tracking server it cannot reach 8 times, waiting up to 2 minutes between
# tries: a worker starting while the registry was down answered nothing, crisis requests
# included, for over 4 minutes. The service's loads try 3 times within seconds (each waiting 30 s
# at most for an answer); these variables, when the operator sets them, still win.
_REGISTRY_TRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def give_up_on_registry_soon() -> None:
    """Bound how long this process's MLflow calls wait for a tracking server that is down
    (see ``_REGISTRY_TRIES``): the service's loads, and ``recommender serve``'s check."""
    for name, value in _REGISTRY_TRIES.items():
        os.environ.setdefault(name, value)


def load_champion_model():
    """``(RecommendationModel, version)`` of the registry's champion (the one MLflow call)."""
    from recommender.registry import load_champion

    give_up_on_registry_soon()
    return load_champion()


def load_version_model(version: str):
    """``(RecommendationModel, version)`` of registered ``version`` (a reload another worker
    announced)."""
    from recommender.registry import MODEL_NAME, load_model

    give_up_on_registry_soon()
    return load_model(f"models:/{MODEL_NAME}/{version}"), str(version)
