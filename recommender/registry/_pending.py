"""Registrations that never finished: a training run killed while it registered its version.

A version is created with the tag ``registration.pending`` (the aliases as they were, as JSON)
and the tag is removed once its card is published, its aliases moved and the changes recorded.
A run stopped by ``kill -9`` (or a lost machine) between the two leaves a version that has no
card, no record in the promotion log and perhaps an alias. The next alias change on the store
undoes it under the store's lock (:func:`undo_abandoned`): while the lock is held no other
registration is under way, so a pending version then is an abandoned one.

Until the mark is removed, readers take an alias on a pending version to name the version it
named before (:func:`committed_holder`): removing the mark is the moment the registration
takes effect, so the service never loads a version whose registration may yet be undone.

A run killed before it registered leaves only a run that MLflow shows RUNNING for ever; runs
carry their machine and process id, and the next run on a store of this machine ends those
whose process is gone KILLED (:func:`end_abandoned_runs`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket

from recommender._processes import process_alive
from recommender.paths import models_dir

__all__ = [
    "PENDING_TAG",
    "pending_aliases",
    "undo_abandoned",
    "is_pending",
    "committed_holder",
    "process_tags",
    "end_abandoned_runs",
]

PENDING_TAG = "registration.pending"
# The process a run is in, so that a run whose process was killed can be ended KILLED.
HOST_TAG = "process.host"
PID_TAG = "process.pid"


def process_tags() -> dict[str, str]:
    """Tags naming this process: a training run carries them while it runs."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def end_abandoned_runs(experiment_id: str, *, mlflow_client) -> list[str]:
    """End KILLED the RUNNING runs of this machine whose process is gone (``kill -9``, a
    crash): MLflow would show them running for ever. Returns their ids.

    Only runs this machine started (their ``process.host``) are judged, by whether their
    process still exists; a run of another machine, or one without the tags, is left alone.
    """
    host = socket.gethostname()
    ended = []
    for run in mlflow_client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
    ):
        tags = run.data.tags
        if tags.get(HOST_TAG) != host or not str(tags.get(PID_TAG, "")).isdigit():
            continue
        if process_alive(int(tags[PID_TAG])):
            continue
        mlflow_client.set_terminated(run.info.run_id, "KILLED")
        ended.append(run.info.run_id)
    return ended


def pending_aliases(before: dict) -> str:
    """The tag's value: the aliases as they were before the registration."""
    return json.dumps({k: str(v) for k, v in before.items()}, sort_keys=True)


def is_pending(version) -> bool:
    """Whether a ``ModelVersion``'s registration has not finished (under way or abandoned)."""
    return PENDING_TAG in (version.tags or {})


def committed_holder(version, alias: str) -> str | None:
    """The version ``alias`` stands for when it is on ``version`` (a ``ModelVersion``): that
    version, or while its registration is pending the version the alias named before (None if
    none)."""
    if not is_pending(version):
        return str(version.version)
    return _before(version).get(alias)


def _before(version) -> dict:
    try:
        return dict(json.loads(version.tags[PENDING_TAG]))
    except (TypeError, ValueError):
        return {}


def undo_abandoned(name: str, *, mlflow_client) -> dict[str, str]:
    """Undo every pending registration of ``name``; call only while holding the store's lock,
    on a store whose lock every process using it shares.

    For each: an alias still on the version goes back to the version it named before (or is
    removed), the version and its published card are deleted, and its run, still RUNNING, ends
    KILLED. Returns ``{version: run_id}`` of what was undone.
    """
    from mlflow.exceptions import MlflowException

    try:
        registered = mlflow_client.get_registered_model(name)
    except MlflowException:
        return {}
    undone = {}
    for version in mlflow_client.search_model_versions(f"name='{name}'"):
        if not is_pending(version):
            continue
        number = str(version.version)
        before = _before(version)
        for alias, holder in dict(registered.aliases).items():
            if str(holder) != number:
                continue
            if alias in before:
                mlflow_client.set_registered_model_alias(name, alias, before[alias])
            else:
                mlflow_client.delete_registered_model_alias(name, alias)
        mlflow_client.delete_model_version(name, number)
        cards = models_dir() / "cards"
        for folder in [cards / number, *cards.glob(f".{number}.new-*")]:
            shutil.rmtree(folder, ignore_errors=True)  # with a copy the kill left half made
        if version.run_id:
            with contextlib.suppress(MlflowException):
                if mlflow_client.get_run(version.run_id).info.status == "RUNNING":
                    mlflow_client.set_terminated(version.run_id, "KILLED")
                mlflow_client.delete_tag(version.run_id, "registered_version")
        undone[number] = version.run_id
    return undone
