"""The training key: the secret under which a model remembers whom it was trained on, and
which rows of a comparison each model has already seen."""

from __future__ import annotations

import hashlib

import numpy as np

from recommender.paths import models_dir
from recommender.settings import make_secret_file

__all__ = [
    "training_key",
    "key_fingerprint",
    "person_hashes",
    "trained_people",
    "seen_rows",
    "comparison_rows",
    "COMPARISON_MIN_ROWS",
]

# Fewest rows unseen by every model compared on which a comparison is made (else all rows): at
# least this many and a quarter of the rows.
COMPARISON_MIN_ROWS = 200

_KEY_ENV = "RECOMMENDER_TRAINING_KEY"
_KEY_FILE = "training.key"


def training_key(*, create: bool = True) -> bytes | None:
    """The secret that keys the person-id hashes a model carries; never stored in the model.

    ``RECOMMENDER_TRAINING_KEY`` wins; otherwise ``<models_dir>/training.key``, created once
    with a random key (mode 0600, written whole or not at all; of two runs making it at once,
    both use the first's). None when neither exists and ``create`` is False.
    """
    import os

    env = os.environ.get(_KEY_ENV)
    if env:
        raw = env.encode()
    else:
        path = models_dir() / _KEY_FILE
        if not path.exists():
            if not create:
                return None
            make_secret_file(path)
        raw = path.read_bytes().strip()
    # BLAKE2b keys are at most 64 bytes: condense whatever was given.
    return hashlib.blake2b(raw, digest_size=32, person=b"train-key").digest()


def key_fingerprint(key: bytes) -> str:
    """A short public name for a key, so a gate can tell whether it holds the same one."""
    return hashlib.blake2b(key, digest_size=8, person=b"key-id").hexdigest()


def person_hashes(person_ids, key: bytes) -> np.ndarray:
    """8-byte keyed BLAKE2b digests of person ids, so a model can remember whom it was trained
    on (for a fair gate) without carrying the identifiers, and without anyone lacking the key
    being able to test whether a given id was in the training data."""
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(str(p).encode(), digest_size=8, key=key).digest(), "big")
            for p in person_ids
        ),
        dtype=np.uint64,
        count=len(person_ids),
    )


def _people(person_ids, *, logged: bool) -> np.ndarray:
    if logged:
        from pipelines._from_log import logged_people

        return logged_people(person_ids)
    return np.asarray([str(p) for p in person_ids], dtype=object)


def trained_people(frame, cohort) -> np.ndarray:
    """Whom a model fitted on ``frame`` (a part of ``cohort``) was trained on: the person ids,
    or for a cohort from the service's log the people behind its rows (see ``logged_people``),
    so that a person's answers of other cycles count as seen too."""
    return _people(frame["person_id"], logged=cohort.loop is not None)


def seen_rows(model, person_ids, *, logged: bool) -> tuple[np.ndarray | None, str]:
    """Which rows' people ``model`` was trained on (``logged``: rows of the service's log).

    ``(mask, "")``; ``(None, "")`` when the model keeps no record (an evidence-only model,
    trained on no one); ``(None, note)`` when its record uses a training key this machine does
    not hold, so no row can be recognised (the note says so).
    """
    seen = model.metadata.get("training_person_hashes")
    if seen is None:
        return None, ""
    key = training_key(create=False)
    if key is None or model.metadata.get("training_key_id") != key_fingerprint(key):
        return None, (
            "its training rows could not be recognised (its person hashes use a training "
            "key this machine does not hold)"
        )
    seen = np.asarray(seen)
    mask = np.isin(person_hashes(_people(person_ids, logged=logged), key), seen)
    if logged:
        # a model trained from the log before people were recorded kept each row's own id
        mask |= np.isin(person_hashes(list(person_ids), key), seen)
    return mask, ""


def comparison_rows(models: dict, person_ids, *, logged: bool) -> tuple[np.ndarray, str]:
    """The rows on which to compare ``models`` (label -> model): those whose people none of
    them was trained on, when at least ``COMPARISON_MIN_ROWS`` and a quarter of the rows
    remain; otherwise all rows. A model graded on people it was fitted to is flattered.

    Returns ``(mask, note)``; the note (empty when nothing needs saying) tells what was left
    out, or why the comparison includes rows a model has seen.
    """
    n = len(person_ids)
    seen = np.zeros(n, dtype=bool)
    unknown = []
    for label, model in models.items():
        rows, why = seen_rows(model, person_ids, logged=logged)
        if rows is not None:
            seen |= rows
        elif why:
            unknown.append(f"{label}: {why}")
    notes = []
    if unknown:
        notes.append(
            "; ".join(unknown) + ", so it may have been trained on some of the rows compared on"
        )
    if not seen.any():
        return np.ones(n, dtype=bool), " ".join(notes)
    left = int(n - seen.sum())
    if left >= max(COMPARISON_MIN_ROWS, 0.25 * n):
        notes.insert(
            0,
            f"{int(seen.sum()):,} of the {n:,} rows belong to people a compared model was "
            f"trained on and were left out; compared on the other {left:,}",
        )
        return ~seen, "; ".join(notes)
    notes.insert(
        0,
        f"{int(seen.sum()):,} of the {n:,} rows belong to people a compared model was trained "
        f"on, too many to leave out (at least {COMPARISON_MIN_ROWS} and a quarter must "
        "remain), so all rows were compared on: this flatters that model",
    )
    return np.ones(n, dtype=bool), "; ".join(notes)
