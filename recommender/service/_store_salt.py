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

Where the salt comes from (:func:`resolve_salt`): the environment, the secrets folder, the
config, else a salt file the service makes once. The file is never empty (an HMAC with an empty
key is one anyone can compute from a guessed id) and is never made for a store that already
holds records: a new random salt cannot be the one they were written with, and a store from
before the fingerprint would adopt it.
"""

from __future__ import annotations

import hmac
from pathlib import Path

import sqlalchemy as sa

from recommender.cohort import not_utf8
from recommender.settings import make_secret_file, read_secret
from recommender.service._audit_tables import recommendations, store_facts
from recommender.service._readiness import Reason
from recommender.service._sqlite import sqlite_file
from recommender.service._store_check import connect_waits
from recommender.service._store_errors import AuditStoreUnreachable, StoreRefusal, shown_store

__all__ = [
    "AuditSaltMismatch",
    "AuditSaltMissing",
    "check_store_salt",
    "resolve_salt",
    "salt_fingerprint",
    "SALT_ENV",
    "SALT_FINGERPRINT",
]

SALT_ENV = "RECOMMENDER_AUDIT_SALT"
MIN_SALT_CHARS = 16
# The store_facts row holding the fingerprint.
SALT_FINGERPRINT = "salt_fingerprint"
_LABEL = b"burnout-recommender audit salt fingerprint v1"
_WHERE = (
    f"{SALT_ENV}, the secrets folder's audit_salt, audit.salt in serve.yaml, or the audit.salt "
    "file in the models folder, in that order"
)


class AuditSaltMismatch(StoreRefusal):
    """The audit store was written with another salt than the one this service was given."""

    reason = Reason.AUDIT_SALT_MISMATCH
    lasting = True

    remedy = (
        f"give this service the audit salt the store was written with ({_WHERE}); the service "
        "log says more"
    )


class AuditSaltMissing(StoreRefusal):
    """No usable salt: none is given and the salt file is empty, the salt is too short, or none
    may be made because the store holds records hashed with a salt this service was not given."""

    reason = Reason.AUDIT_SALT_MISSING
    lasting = True


def resolve_salt(
    configured: str | None, models_dir: Path, *, create: bool = True, store: str | None = None
) -> str:
    """The salt for person hashes: the environment, the secrets folder, the config, a salt file.

    ``$RECOMMENDER_AUDIT_SALT`` first, then ``$RECOMMENDER_SECRETS_DIR/audit_salt`` (see
    :func:`recommender.settings.read_secret`). Several workers or replicas must share one salt,
    so a deployment gives it one of these ways. Otherwise the file (``<models_dir>/audit.salt``,
    owner-only) is made once with a random salt, whole or not at all, so hashes of the same
    person stay comparable across restarts of a local service.

    ``store``: the URL of the audit store the salt is for; no salt file is made for a store that
    already holds records (:class:`AuditSaltMissing`), since they were hashed with another salt.
    ``create=False`` (a command reading what the service hashed) makes none either.

    Raises
    ------
    AuditSaltMissing
        An empty salt file, a salt shorter than ``MIN_SALT_CHARS``, or no salt where none may
        be made.
    """
    secret = read_secret("audit_salt", env=SALT_ENV)
    if secret:
        return _long_enough(secret, f"{SALT_ENV} (or the secrets folder's audit_salt)", store)
    if configured and configured.strip():
        return _long_enough(configured, "audit.salt in serve.yaml", store)
    path = Path(models_dir) / "audit.salt"
    if not path.exists():
        if not create:
            raise AuditSaltMissing(
                f"no audit salt: person ids are linked through the salt the service hashed "
                f"them with; give this command the service's own ({SALT_ENV}, the secrets "
                f"folder's audit_salt, audit.salt in serve.yaml, or the file {path})"
            )
        if store is not None and _holds_records(store):
            raise AuditSaltMissing(
                f"no audit salt is given, and none is made for the audit store "
                f"{shown_store(store)}: it holds records, whose person hashes were made with a salt "
                f"a new one would never match (and a store from before revision 0004 would "
                f"adopt it). Give this service the salt those records were written with "
                f"({_WHERE}; the file would be {path}), or another store (audit.url)"
            )
        make_secret_file(path)
    try:
        # UTF-8 whatever the locale: the same salt given as a variable hashes the same.
        salt = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise AuditSaltMissing(
            f"the audit salt file {path}: {not_utf8(path) or 'not UTF-8 text'}; accepted: "
            f"UTF-8 text, the salt the audit store was written with (or give that salt another "
            f"way: {SALT_ENV}, the secrets folder's audit_salt, audit.salt in serve.yaml)"
        ) from None
    except OSError as error:
        # A folder where the file should be, or a file the service's user may not read (a
        # volume or restore made by another user): said as a salt problem, not a store one.
        raise AuditSaltMissing(
            f"the audit salt file {path} could not be read ({error.strerror or error}); make it "
            f"a file readable by the service's user holding the salt the audit store was "
            f"written with, or give that salt another way ({SALT_ENV}, the secrets folder's "
            f"audit_salt, audit.salt in serve.yaml)"
        ) from None
    if not salt:
        raise AuditSaltMissing(
            f"the audit salt file {path} is empty (a start stopped while making it?), and an "
            f"empty salt would hash person ids as anyone could; write in it the salt the audit "
            f"store was written with, give that salt another way ({SALT_ENV}, the secrets "
            f"folder's audit_salt, audit.salt in serve.yaml), or delete the file to have a new "
            f"one made if the store holds no records yet"
        )
    return _long_enough(salt, f"the file {path}", store)


def _long_enough(salt: str, where: str, store: str | None = None) -> str:
    """``salt`` if it has at least ``MIN_SALT_CHARS`` characters: person ids are guessable
    (payroll numbers, ids in sequence), so a short salt lets anyone recompute their hashes.

    Releases before 2026-12-05 took shorter salts: for a ``store`` holding records written
    with one, "make a new salt" alone would orphan them (a store from before revision 0004
    adopts it without a word), so the refusal says what keeps them.
    """
    if len(salt) >= MIN_SALT_CHARS:
        return salt
    short = (
        f"the audit salt from {where} has {len(salt)} characters; a salt needs at least "
        f"{MIN_SALT_CHARS}, or anyone who guesses a person's id can recompute their hash from "
        "it (releases before 2026-12-05 took shorter ones)"
    )
    make = "python3 -c 'import secrets; print(secrets.token_hex(32))'"
    try:
        kept = store is not None and _holds_records(store)
    except AuditStoreUnreachable:
        kept = False
    if not kept:
        raise AuditSaltMissing(
            f"{short}. Make one with {make} (the salt file the service makes by itself is 64 "
            "characters)"
        )
    written = (
        "and its fingerprint shows they were written with this very salt"
        if _fingerprint_of(store) == salt_fingerprint(salt.encode())
        else "written with the salt an older release was given"
    )
    raise AuditSaltMissing(
        f"{short}. The audit store {shown_store(store)} holds records, {written}: a new salt would "
        "not match their person hashes (outcomes would not link to the answers they follow, "
        "training from the log would count one person as two), and a store from before "
        "revision 0004 would adopt it without a word. Keep this store as the record of what "
        "was served (reading it needs no salt: `recommender audit export`), and serve with a "
        f"new store (audit.url in serve.yaml) and a new salt of {MIN_SALT_CHARS} characters or "
        f"more ({make})"
    )


def _fingerprint_of(store: str) -> str | None:
    """The salt fingerprint ``store`` keeps, or None (none kept, or it cannot be read)."""
    try:
        engine = sa.create_engine(store, connect_args=connect_waits(store))
    except (sa.exc.ArgumentError, ImportError):
        return None
    row = store_facts.c
    query = sa.select(row.value).where(row.name == SALT_FINGERPRINT)
    try:
        with engine.connect() as connection:
            return connection.execute(query).scalar()
    except sa.exc.SQLAlchemyError:  # no store_facts table: a store from before revision 0004
        return None
    finally:
        engine.dispose()


def _holds_records(url: str) -> bool:
    """Whether the store at ``url`` holds any recommendation record (each answer writes one).

    A URL no store is made from is left for :class:`~recommender.service.AuditLog` to refuse by
    name; a store that cannot be read now is :class:`AuditStoreUnreachable` (the service tries
    again), since making a salt for it could orphan its records.
    """
    try:
        database = sqlite_file(url)
        if database is not None and not database.exists():
            return False
        engine = sa.create_engine(url, connect_args=connect_waits(url))
    except (sa.exc.ArgumentError, ImportError):
        return False
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table(recommendations.name):
                return False
            query = sa.select(recommendations.c.id).limit(1)
            return connection.execute(query).first() is not None
    except sa.exc.SQLAlchemyError as error:
        cause = getattr(error, "orig", None) or error
        raise AuditStoreUnreachable(
            f"no audit salt is given, and whether the audit store {shown_store(url)} holds "
            f"records (hashed with a salt a new one would never match) cannot be read now "
            f"({type(cause).__name__}); a salt is made once the store answers "
            f"and holds none, or give the service its salt ({_WHERE})"
        ) from None
    finally:
        engine.dispose()


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
        f"to it must ({_WHERE}), or another store (audit.url)"
    )
