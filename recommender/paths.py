"""Where the project reads configuration and writes artifacts.

Resolved when asked, never at import: ``RECOMMENDER_CONFIG_DIR`` and ``RECOMMENDER_HOME`` win,
then ``./configs`` and ``./models`` under the current directory, then the source checkout's own.
Installed from a wheel (no checkout around the package), the shipped configuration is read from
``<prefix>/share/burnout-recommender/configs`` (pyproject's data-files) and artifacts go to
``./models``: never into the installed package's folder.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

__all__ = ["CONFIG_DIR_ENV", "config_dir", "models_dir", "config_path", "shipped_config_dir"]

CONFIG_DIR_ENV = "RECOMMENDER_CONFIG_DIR"
_CHECKOUT = Path(__file__).resolve().parents[1]
# Where a wheel's data-files put the shipped configs (pyproject.toml, tool.setuptools.data-files).
_SHARED = Path("share") / "burnout-recommender" / "configs"


def _installed(folder: Path) -> bool:
    """Whether ``folder``, the one holding the package, is an environment's library folder (a
    wheel's install) rather than a source tree (a checkout, an editable install, a bento)."""
    return folder.name in ("site-packages", "dist-packages")


def config_dir() -> Path:
    """The folder holding ``interventions.yaml``, ``scenarios/``, ``train.yaml``, ``serve.yaml``."""
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        return Path(env)
    local = Path.cwd() / "configs"
    if (local / "interventions.yaml").exists():
        return local
    return shipped_config_dir()


def shipped_config_dir() -> Path:
    """The configs this release ships (a wheel's data-files, else the source tree's), whatever
    folder :func:`config_dir` reads: what a configuration kept from an older release is
    compared with."""
    if _installed(_CHECKOUT):
        installed = Path(sysconfig.get_path("data")) / _SHARED
        if (installed / "interventions.yaml").exists():
            return installed
    return _CHECKOUT / "configs"


def config_path(name: str) -> Path:
    """A file inside :func:`config_dir` (``"interventions.yaml"``, ``"scenarios/null.yaml"``).

    Raises
    ------
    InputError
        When ``RECOMMENDER_CONFIG_DIR`` names no folder: a typo there is said as the
        variable's, not as a missing ``interventions.yaml`` the reader never meant to move.
    """
    folder = config_dir()
    given = os.environ.get(CONFIG_DIR_ENV)
    if given and not folder.is_dir():
        from recommender.errors import InputError

        what = "is not a folder" if folder.exists() else "does not exist"
        seen = "" if folder.is_absolute() else f" (in {Path.cwd()})"
        raise InputError(
            f"{CONFIG_DIR_ENV} = {given!r} {what}{seen}; give the folder "
            "holding interventions.yaml, serve.yaml, train.yaml and scenarios/, or unset it "
            "to read ./configs or the shipped configs"
        )
    return folder / name


def models_dir() -> Path:
    """The folder for local artifacts: the embedded MLflow store, cards, audit log."""
    env = os.environ.get("RECOMMENDER_HOME")
    if env:
        return Path(env)
    local = Path.cwd() / "models"
    if local.is_dir() or _installed(_CHECKOUT):
        return local
    return _CHECKOUT / "models"
