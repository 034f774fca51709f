"""Lineage of a training run: the code's git commit and the versions of the packages it ran on,
and the fingerprint that tells whether two runs would train the same model."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

_PACKAGES = (
    "burnout-recommender",
    "mlflow",
    "lightgbm",
    "scikit-learn",
    "pandas",
    "numpy",
    "scipy",
    "pyarrow",
)


def _git_commit() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def _package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


# The run tag holding :func:`training_fingerprint`.
FINGERPRINT_TAG = "training.fingerprint"


def training_fingerprint(
    settings: dict, data_sha256: str, *, versions: dict, files=(), training_key_id: str = ""
) -> str:
    """A digest of everything a training run's model follows from: the settings, the data,
    the code (every module of the library and the pipelines, so that a change elsewhere, to
    the README say, does not count), the package versions, ``files`` (the configuration
    files read: catalog, scenarios, the service's safety rules) and ``training_key_id`` (the
    public name of the training key, under which the model records whom it was trained on:
    a model whose record uses a key no longer held lets the next gate see none of its rows).

    Two runs with the same fingerprint train the same model (the seeds are in the settings).
    """
    root = Path(__file__).resolve().parents[1]
    code = sorted(
        path for package in ("recommender", "pipelines") for path in (root / package).rglob("*.py")
    )
    digest = hashlib.sha256()
    for part in (json.dumps(settings, sort_keys=True, default=str), data_sha256):
        digest.update(part.encode() + b"\0")
    digest.update(json.dumps(versions, sort_keys=True).encode() + b"\0")
    digest.update(training_key_id.encode() + b"\0")
    for path in code:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    for path in sorted({Path(f).resolve() for f in files if Path(f).is_file()}):
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
