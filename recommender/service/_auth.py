"""API keys with roles: who may ask for recommendations, reload the model, read the audit trail.

Keys are kept only as SHA-256 digests, in the config file and in memory alike, and a presented
key is compared against every stored digest with :func:`hmac.compare_digest`, without stopping
at the first match, so the time taken says nothing about which key (or how much of it) matched.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from recommender.errors import InputError

__all__ = [
    "ROLES",
    "PERMISSIONS",
    "KeyRing",
    "Decision",
    "authorize",
    "hash_key",
    "parse_env_keys",
    "secret_api_keys",
    "presented_key",
    "API_KEYS_ENV",
]

API_KEYS_ENV = "RECOMMENDER_API_KEYS"
# The shortest key given in clear that is accepted: a short key is one a caller can guess.
MIN_KEY_CHARS = 16
MAKE_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"
# An entry of RECOMMENDER_API_KEYS (or api_keys) giving a key's SHA-256 digest, not the key.
DIGEST_PREFIX = "sha256:"
ROLES = ("program", "scientist", "auditor")

# Protected routes and the roles allowed on each. Anything not listed (health probes, metrics,
# the OpenAPI document) stays open.
PERMISSIONS: dict[str, frozenset[str]] = {
    "/recommend": frozenset({"program", "scientist"}),
    "/recommend_batch": frozenset({"program", "scientist"}),
    "/allocate": frozenset({"program", "scientist"}),
    "/reload": frozenset({"scientist"}),
    "/outcomes": frozenset({"program"}),
    # A person's withdrawn consent reaches the program, which alone holds their raw id.
    "/erasures": frozenset({"program"}),
    "/model_card": frozenset({"auditor", "scientist"}),
    "/model_card.json": frozenset({"auditor", "scientist"}),
    "/audit/export": frozenset({"auditor"}),
}


def hash_key(key: str) -> str:
    """SHA-256 hex digest of an API key, as stored in ``serve.yaml``.

    Examples
    --------
    >>> hash_key("secret")[:16]
    '2bb80d537b1da3e3'
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_env_keys(text: str | None, *, source: str = API_KEYS_ENV) -> list[tuple[str, str]]:
    """Parse ``"program=KEY,auditor=KEY2"`` into ``(role, sha256)`` pairs; keys are hashed here.

    An entry ``ROLE=sha256:<64 hex digits>`` gives the key's digest (:func:`hash_key`) instead
    of the key, so that the secret store need not hold keys in clear.

    Examples
    --------
    >>> key = "a-key-of-24-characters.."
    >>> parse_env_keys(f"program={key},auditor=sha256:{hash_key('k2')}") == [
    ...     ("program", hash_key(key)), ("auditor", hash_key("k2"))]
    True

    Raises
    ------
    InputError
        Naming ``source`` and the entry (never the key) and the accepted roles; a key given in
        clear shorter than ``MIN_KEY_CHARS`` characters is refused (a digest cannot be checked).
    """
    pairs = []
    for i, entry in enumerate((text or "").split(",")):
        entry = entry.strip()
        if not entry:
            continue
        role, sep, key = entry.partition("=")
        role, key = role.strip(), key.strip()
        if not sep or not key:
            raise InputError(f"{source} entry {i + 1}: expected ROLE=KEY with a non-empty key")
        if role not in ROLES:
            raise InputError(
                f"{source} entry {i + 1}: role {role!r} is not accepted; roles: {', '.join(ROLES)}"
            )
        if key.startswith(DIGEST_PREFIX):
            digest = key[len(DIGEST_PREFIX) :].strip()
            if not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
                raise InputError(
                    f"{source} entry {i + 1}: a {DIGEST_PREFIX} entry needs the 64 hex digits "
                    "of the key's SHA-256 digest (ROLE=sha256:HEX), or give the key itself"
                )
            pairs.append((role, digest.lower()))
        elif not (key.isascii() and key.isprintable()):
            # A header carries its bytes as latin-1 text: a key of other characters (an accented
            # letter, a pasted no-break space) would never match its own digest.
            raise InputError(
                f"{source} entry {i + 1} ({role}): the key holds a character other than "
                f"printable ASCII, which an HTTP header does not carry as it is; make one with "
                f"{MAKE_KEY}"
            )
        elif len(key) < MIN_KEY_CHARS:
            raise InputError(
                f"{source} entry {i + 1} ({role}): the key has {len(key)} characters, and a key "
                f"needs at least {MIN_KEY_CHARS} (a short one can be guessed); make one with "
                f"{MAKE_KEY}"
            )
        else:
            pairs.append((role, hash_key(key)))
    return pairs


def secret_api_keys() -> list[tuple[str, str]]:
    """The keys given outside ``serve.yaml``: ``$RECOMMENDER_API_KEYS``, else the secrets folder's
    ``api_keys`` file, parsed by :func:`parse_env_keys`; an error names the one read."""
    import os
    from pathlib import Path

    from recommender.settings import SECRETS_DIR_ENV, read_secret

    if os.environ.get(API_KEYS_ENV, "").strip():
        return parse_env_keys(os.environ[API_KEYS_ENV])
    source = Path(os.environ.get(SECRETS_DIR_ENV, "").strip()) / "api_keys"
    return parse_env_keys(read_secret("api_keys"), source=str(source))


class KeyRing:
    """The digests of the accepted keys and the role each grants.

    Parameters
    ----------
    entries : iterable of (role, sha256 hex digest)

    Examples
    --------
    >>> ring = KeyRing([("program", hash_key("k1")), ("auditor", hash_key("k2"))])
    >>> ring.roles_of("k1"), ring.roles_of("nope")
    (frozenset({'program'}), frozenset())
    """

    def __init__(self, entries: Iterable[tuple[str, str]]):
        self._entries = tuple((role, bytes.fromhex(digest)) for role, digest in entries)

    def __len__(self) -> int:
        return len(self._entries)

    def roles_of(self, key: str) -> frozenset[str]:
        """The roles a presented key grants (empty when it matches no stored digest)."""
        presented = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
        roles = set()
        for role, digest in self._entries:
            # No early exit: every stored digest is compared for every request.
            if hmac.compare_digest(presented, digest):
                roles.add(role)
        return frozenset(roles)


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from ``Authorization: Bearer KEY`` or ``x-api-key: KEY`` (lower-case names)."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, credentials = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


@dataclass(frozen=True)
class Decision:
    """Outcome of an authorization check: ``status`` 200, 401 or 403; ``caller``, the digest
    of the key that was granted (:func:`hash_key`), whose idempotency keys are its own."""

    status: int
    role: str | None = None
    message: str = ""
    caller: str | None = None


def authorize(path: str, headers: Mapping[str, str], keyring: KeyRing) -> Decision:
    """Decide whether a request may reach ``path``.

    Returns status 200 with the caller's role (``None`` for open routes), 401 when a
    protected route is called without a valid key, 403 when the key's role is not allowed.
    """
    allowed = PERMISSIONS.get(path.rstrip("/") or "/")
    if allowed is None:
        return Decision(200)
    key = presented_key(headers)
    if key is None:
        return Decision(
            401,
            message="an API key is required: send 'Authorization: Bearer KEY' or 'x-api-key: KEY'",
        )
    other = headers.get("x-api-key", "").strip()
    if other and other != key:
        # Which of two keys counts is no guess to make: a proxy in front may check the other.
        return Decision(
            401, message="two different API keys were sent (Authorization and x-api-key); send one"
        )
    roles = keyring.roles_of(key)
    if not roles:
        # A header given twice reaches here as one value, its lines joined by a comma (which no
        # key of RECOMMENDER_API_KEYS holds: it separates its entries with commas).
        twice = " (a key header was given more than once: send one)" if "," in key else ""
        return Decision(401, message=f"the API key is not valid{twice}")
    granted = sorted(roles & allowed)
    if not granted:
        return Decision(
            403,
            message=f"role {', '.join(sorted(roles))} may not call {path}; "
            f"allowed roles: {', '.join(sorted(allowed))}",
        )
    return Decision(200, role=granted[0], caller=hash_key(key))
