"""The training key: the secret under which a model remembers whom it was trained on."""

from __future__ import annotations

import contextlib
import hashlib
import tempfile

import numpy as np

from recommender.paths import models_dir

__all__ = ["training_key", "key_fingerprint", "person_hashes"]

_KEY_ENV = "RECOMMENDER_TRAINING_KEY"
_KEY_FILE = "training.key"


def training_key(*, create: bool = True) -> bytes | None:
    """The secret that keys the person-id hashes a model carries; never stored in the model.

    ``RECOMMENDER_TRAINING_KEY`` wins; otherwise ``<models_dir>/training.key``, created once
    with a random key (mode 0600, written whole or not at all). None when neither exists and
    ``create`` is False.
    """
    import os
    import secrets

    env = os.environ.get(_KEY_ENV)
    if env:
        raw = env.encode()
    else:
        path = models_dir() / _KEY_FILE
        if not path.exists():
            if not create:
                return None
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(prefix=".training-key-", dir=path.parent)
            try:
                os.fchmod(handle, 0o600)
                os.write(handle, secrets.token_hex(32).encode())
                os.close(handle)
                os.replace(temp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(handle)
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
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
