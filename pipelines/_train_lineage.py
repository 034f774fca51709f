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


def _git_commit(root: Path | None = None) -> str:
    """The commit of the checkout this code runs from (``root``: the folder holding the
    ``pipelines`` package; ``-dirty`` when its tracked files were changed), or "unknown" when
    it is not run from one (an installed package)."""
    root = Path(root).resolve() if root is not None else Path(__file__).resolve().parents[1]
    try:
        top, commit = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.split("\n")[:2]
        # An installed package inside another project's checkout (a .venv in it) is not that
        # project's code: its commit would be recorded as this model's.
        if Path(top).resolve() != root:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError, ValueError):
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
    settings: dict,
    data_sha256: str,
    *,
    versions: dict,
    files=(),
    training_key_id: str = "",
    service: dict | None = None,
) -> str:
    """A digest of everything a training run's model follows from: the settings, the data,
    the code (every module of the library and the pipelines, so that a change elsewhere, to
    the README say, does not count), the package versions, ``files`` (the configuration
    files read: catalog, scenarios, the service's safety rules) and ``training_key_id`` (the
    public name of the training key, under which the model records whom it was trained on:
    a model whose record uses a key no longer held lets the next gate see none of its rows)
    and ``service``: what training reads of the service's ``serve.yaml`` (see
    :func:`serve_settings_read`), given apart from ``files`` because the loop changes the rest
    of that file every survey cycle.

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
    if service is not None:
        digest.update(json.dumps(service, sort_keys=True, default=str).encode() + b"\0")
    for path in code:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    for path in sorted({Path(f).resolve() for f in files if Path(f).is_file()}):
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


# serve.yaml's settings that only say how the service runs or which round it serves: a
# program raises exploration.cycle every survey cycle (README, the learning loop, step 5), and
# `train --if-changed` retrained the same model on the same log for it, registering a new
# version (and champion) each cycle. Nothing of them reaches the model or its card but the
# cycle's number in the card's description of the exploration at training.
SERVICE_ONLY = (
    "host",
    "port",
    "workers",
    "threads",
    "timeout",
    "reload_poll_seconds",
    "max_batch_rows",
    "log_level",
    "auth",
    "erasure",
)


def serve_settings_read(path) -> dict:
    """What a training run reads of the service's settings file ``path``: the file as parsed,
    without :data:`SERVICE_ONLY`, ``exploration.cycle`` and ``audit.durability``; the file's
    digest when it is not a YAML mapping (a broken file still counts as a change), ``{}`` when
    there is none."""
    import yaml

    path = Path(path)
    if not path.is_file():
        return {}
    data = path.read_bytes()
    try:
        read = yaml.safe_load(data)
    except yaml.YAMLError:
        read = None
    if not isinstance(read, dict):
        return {"sha256": hashlib.sha256(data).hexdigest()}
    kept = {k: v for k, v in read.items() if k not in SERVICE_ONLY}
    for block, key in (("exploration", "cycle"), ("audit", "durability")):
        if isinstance(kept.get(block), dict):
            kept[block] = {k: v for k, v in kept[block].items() if k != key}
    return kept


# Where a run logs its settings, as a training config `recommender train --config` reads.
CONFIG_ARTIFACT = "config/train.yaml"


def config_text(settings: dict) -> str:
    """The run's settings (after --seed and --data overrides) as the YAML file it logs at
    :data:`CONFIG_ARTIFACT`; its sha256 is the ``config.sha256`` tag, so a downloaded copy can
    be checked against the run."""
    import yaml

    plain = json.loads(json.dumps(settings, default=str))
    return yaml.safe_dump(plain, default_flow_style=False, sort_keys=True)


def reproduction(settings: dict, cohort) -> dict:
    """What retrains a run's model: the command, and the digests of what it reads
    (``config_yaml`` is the text to log at :data:`CONFIG_ARTIFACT`).

    The command reads the run's logged config (:data:`CONFIG_ARTIFACT`) and, for a data file,
    the file of the run's ``data.sha256``; the catalog the config names must be the file of
    ``catalog_sha256``, and the code and package versions those the run records (git commit,
    ``version.*`` tags). A model trained from the service's log has no such command: the log
    changes as outcomes are recorded. ``cohort`` None: the evidence-only model.
    """
    from pipelines._train_cohort import catalog_file
    from recommender.catalog import catalog_sha256 as file_digest

    config_yaml = config_text(settings)
    config_sha256 = hashlib.sha256(config_yaml.encode()).hexdigest()
    trained_on = {}
    catalog_sha256 = file_digest(catalog_file(settings))
    config = Path(CONFIG_ARTIFACT).name
    if cohort is None:
        command = f"recommender train --config {config} --evidence-only"
        how = (
            f"{config} is this run's MLflow artifact {CONFIG_ARTIFACT} (sha256 {config_sha256}); "
            "the model is the catalog's published evidence alone"
        )
    elif cohort.loop is not None:
        command = None
        trained_on = log_read(cohort)
        how = (
            "no single command: trained from the service's log, which grows as outcomes are "
            f"recorded; it read {trained_on['data.log.rows']} served recommendations with "
            f"outcomes (sha256 {cohort.sha256}), the newest recorded at "
            f"{trained_on.get('data.log.recorded_through', 'an unrecorded time')} (outcome id "
            f"{trained_on.get('data.log.last_outcome_id', 'not recorded')} in the store's "
            f"outcomes export), and trained on {trained_on['data.log.table_rows']} of them "
            f"(training table sha256 {trained_on['data.log.table_sha256']}), taken in person "
            "hash and request id order, so the same rows read from any store train the same model"
        )
    elif cohort.path is not None:
        data = Path(cohort.path).name
        command = f"recommender train --config {config} --data {data}"
        how = (
            f"{config} is this run's MLflow artifact {CONFIG_ARTIFACT} (sha256 {config_sha256}); "
            f"{data} the training file of sha256 {cohort.sha256} (its rows are fitted in "
            "person_id order, so another order of the same rows trains the same model)"
        )
    else:
        command = f"recommender train --config {config}"
        how = (
            f"{config} is this run's MLflow artifact {CONFIG_ARTIFACT} (sha256 {config_sha256}), "
            "which names the simulated cohort"
        )
    return {
        "command": command,
        "how": f"{how}; the catalog file {settings['catalog']} must have sha256 "
        f"{catalog_sha256}, and the code and package versions be those recorded here",
        "config_artifact": CONFIG_ARTIFACT,
        "config_yaml": config_yaml,
        "config_sha256": config_sha256,
        "catalog_sha256": catalog_sha256,
        "trained_on": trained_on,
    }


def log_read(cohort) -> dict:
    """What a from-log run read, as run tags: ``data.log.rows`` (served recommendations with
    outcomes read), ``data.log.recorded_through`` and ``data.log.last_outcome_id`` (the newest
    outcome read: its time, and its id in that store), ``data.log.table_rows`` and
    ``data.log.table_sha256`` (the training table: the rows kept, arms set aside and rows the
    data contract refuses left out, before the split). Two runs on the same rows show the same
    digests; a later log, others.
    """
    loop = cohort.loop
    # n_rows counts the rows that meet the contract; every row read is in the log's digest
    read = (loop.get("contract_left_out") or {}).get("read", loop["n_rows"])
    tags = {
        "data.log.rows": str(read),
        "data.log.table_rows": str(loop.get("table_rows", "not recorded")),
        "data.log.table_sha256": str(loop.get("table_sha256", "not recorded")),
    }
    if loop.get("outcomes_recorded_through"):
        tags["data.log.recorded_through"] = str(loop["outcomes_recorded_through"])
    if loop.get("last_outcome_id") is not None:
        tags["data.log.last_outcome_id"] = str(loop["last_outcome_id"])
    return tags
