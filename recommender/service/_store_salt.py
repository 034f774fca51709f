"""One audit store, one salt: a store remembers a fingerprint of the salt it was written with.

Person hashes link a person's answers, outcomes and exploration draws only under one salt. Two
services (replicas, an old and a new deployment) writing one store with different salts would
each see the other's people as strangers: an outcome posted to one for a person the other served
is refused, exploration draws meant to repeat per person differ, and training from the log
counts one person as two. So the first service that writes a store leaves the fingerprint of its
salt there (a store made before this check adopts the salt it is next opened with), and a
service whose salt has another fingerprint is refused (:class:`AuditSaltMismatch`).

The fingerprint is an HMAC under the salt of a constant, with SHA3-256 where person hashes use
SHA-256, so it is no person's hash either; like a person hash, it does not reveal the salt.
"""

from __future__ import annotations

import hmac

import sqlalchemy as sa

from recommender.errors import InputError
from recommender.service._audit_tables import store_facts

__all__ = ["AuditSaltMismatch", "check_store_salt", "salt_fingerprint", "SALT_FINGERPRINT"]

# The store_facts row holding the fingerprint.
SALT_FINGERPRINT = "salt_fingerprint"
_LABEL = b"burnout-recommender audit salt fingerprint v1"


class AuditSaltMismatch(InputError):
    """The audit store was written with another salt than the one this service was given."""

    remedy = (
        "give this service the audit salt the store was written with (RECOMMENDER_AUDIT_SALT, "
        "the secrets folder's audit_salt, audit.salt in serve.yaml, or the audit.salt file in "
        "the models folder, in that order); the service log says more"
    )


def salt_fingerprint(salt: bytes) -> str:
    """What a store keeps of ``salt``: a keyed digest that tells salts apart (hex).

    >>> salt_fingerprint(b"s") == salt_fingerprint(b"s") != salt_fingerprint(b"t")
    True
    >>> "s" in salt_fingerprint(b"secret-salt")  # hex digits only: nothing of the salt
    False
    """
    return hmac.digest(salt, _LABEL, "sha3_256").hex()


def check_store_salt(engine: sa.Engine, salt: bytes, *, shown: str) -> None:
    """Refuse ``salt`` unless the store was written with it; a store without a fingerprint yet
    takes ``salt``'s. ``shown``: the store's URL without its password, for the message."""
    mine = salt_fingerprint(salt)
    row = store_facts.c
    for _ in range(2):  # a second look when another worker adopted its salt meanwhile
        with engine.connect() as connection:
            found = connection.execute(
                sa.select(row.value).where(row.name == SALT_FINGERPRINT)
            ).scalar()
        if found is None:
            try:
                with engine.begin() as connection:
                    connection.execute(
                        store_facts.insert().values(name=SALT_FINGERPRINT, value=mine)
                    )
                return
            except sa.exc.IntegrityError:
                continue
            except sa.exc.OperationalError:  # a store opened read-only: nothing to adopt for,
                return  # its writes are refused on their own (the service's failure path)
        if hmac.compare_digest(found, mine):
            return
        break
    raise AuditSaltMismatch(
        f"the audit store {shown} was written with another audit salt than this service's "
        "(their fingerprints differ; neither salt is shown): its person hashes would not match "
        "this service's, so outcomes would not link to the answers they follow, exploration "
        "draws would differ per person and training from the log would count one person as "
        "two. Give this service the salt the store was written with, as every service writing "
        "to it must (RECOMMENDER_AUDIT_SALT, the secrets folder's audit_salt, audit.salt in "
        "serve.yaml, or the audit.salt file in the models folder, in that order), or another "
        "store (audit.url)"
    )
