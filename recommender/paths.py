"""Where the project reads configuration and writes artifacts.

Resolved when asked, never at import: ``RECOMMENDER_CONFIG_DIR`` and ``RECOMMENDER_HOME`` win,
then ``./configs`` and ``./models`` under the current directory, then the source checkout's own.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["config_dir", "models_dir", "config_path"]

_CHECKOUT = Path(__file__).resolve().parents[1]


def config_dir() -> Path:
    """The folder holding ``interventions.yaml``, ``scenarios/``, ``train.yaml``, ``serve.yaml``."""
    env = os.environ.get("RECOMMENDER_CONFIG_DIR")
    if env:
        return Path(env)
    local = Path.cwd() / "configs"
    if (local / "interventions.yaml").exists():
        return local
    return _CHECKOUT / "configs"


def config_path(name: str) -> Path:
    """A file inside :func:`config_dir` (``"interventions.yaml"``, ``"scenarios/null.yaml"``)."""
    return config_dir() / name


def models_dir() -> Path:
    """The folder for local artifacts: the embedded MLflow store, cards, audit log."""
    env = os.environ.get("RECOMMENDER_HOME")
    if env:
        return Path(env)
    local = Path.cwd() / "models"
    if local.is_dir():
        return local
    return _CHECKOUT / "models"
