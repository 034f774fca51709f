"""API keys: hashed at rest and in memory, constant-time comparison, roles per route."""

import hashlib

import pytest

from recommender.errors import InputError
from recommender.service import KeyRing, authorize, hash_key, parse_env_keys
from recommender.service._auth import PERMISSIONS, presented_key

RING = KeyRing(
    [
        ("program", hash_key("p-key")),
        ("scientist", hash_key("s-key")),
        ("auditor", hash_key("a-key")),
    ]
)


def test_keys_are_kept_only_as_digests():
    ring = KeyRing(parse_env_keys("program=plain-secret-key-0123"))
    assert b"plain-secret-key-0123" not in repr(vars(ring)).encode()
    assert ring._entries[0][1] == hashlib.sha256(b"plain-secret-key-0123").digest()


def test_comparison_uses_hmac_compare_digest_for_every_stored_key(monkeypatch):
    import hmac

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    assert RING.roles_of("p-key") == {"program"}
    assert len(calls) == 3  # no early exit at the first (matching) entry


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"authorization": "Bearer abc"}, "abc"),
        ({"authorization": "bearer  abc "}, "abc"),
        ({"x-api-key": "abc"}, "abc"),
        ({"authorization": "Basic abc"}, None),
        ({"authorization": "Bearer "}, None),
        ({}, None),
    ],
)
def test_presented_key(headers, expected):
    assert presented_key(headers) == expected


@pytest.mark.parametrize(
    "path, key, status",
    [
        ("/recommend", None, 401),
        ("/recommend", "wrong", 401),
        ("/recommend", "a-key", 403),
        ("/recommend", "p-key", 200),
        ("/recommend", "s-key", 200),
        ("/recommend_batch", "p-key", 200),
        ("/allocate", "p-key", 200),
        ("/allocate", "a-key", 403),
        ("/reload", "p-key", 403),
        ("/reload", "s-key", 200),
        ("/model_card", "p-key", 403),
        ("/model_card", "a-key", 200),
        ("/model_card.json", "a-key", 200),
        ("/audit/export", "s-key", 403),
        ("/audit/export", "a-key", 200),
        ("/livez", None, 200),
        ("/readyz", None, 200),
        ("/metrics", None, 200),
        ("/docs.json", None, 200),
    ],
)
def test_roles_per_route(path, key, status):
    headers = {} if key is None else {"x-api-key": key}
    decision = authorize(path, headers, RING)
    assert decision.status == status
    if status == 200 and path in PERMISSIONS:
        assert decision.role in PERMISSIONS[path]


def test_trailing_slash_does_not_bypass_auth():
    assert authorize("/recommend/", {}, RING).status == 401


@pytest.mark.parametrize(
    "text, words",
    [
        ("admin=x", "role 'admin' is not accepted"),
        ("program", "expected ROLE=KEY"),
        ("program=", "expected ROLE=KEY"),
    ],
)
def test_env_key_mistakes_never_echo_the_key(text, words):
    with pytest.raises(InputError) as caught:
        parse_env_keys(text)
    assert words in str(caught.value)


def test_env_keys_with_spaces_and_empty_entries():
    text = " program = a-first-key-of-20 ,, auditor=a-second-key-of-20 "
    assert [r for r, _ in parse_env_keys(text)] == ["program", "auditor"]


@pytest.mark.parametrize("key", ["change-me", "k1", "15-characters.."])
def test_a_key_given_in_clear_shorter_than_16_characters_is_refused_unechoed(key):
    # A guessable key (README's placeholder, a test's "k1") opened the service to anyone who
    # tried it; the service now refuses to start on it and says how to make one.
    with pytest.raises(InputError) as caught:
        parse_env_keys(f"scientist=sixteen-chars-ok,program={key}")
    message = str(caught.value)
    assert "RECOMMENDER_API_KEYS entry 2 (program)" in message and "at least 16" in message
    assert key not in message and "secrets.token_urlsafe" in message
    assert parse_env_keys("program=sixteen-chars-ok") == [("program", hash_key("sixteen-chars-ok"))]


# -- found by red-teaming the deployment (reddeploy) ---------------------------------------------
def test_a_secret_may_hold_only_the_keys_digests():
    """A container's keys come from RECOMMENDER_API_KEYS or the secrets folder's api_keys, which
    took keys in clear only: whoever could read the secret store could call the service. An
    entry ROLE=sha256:<hex digest> gives the digest alone (rotation: the new key's digest beside
    the old one's, then the old one removed)."""
    old, new = hash_key("old-program-key"), hash_key("new-program-key")
    ring = KeyRing(parse_env_keys(f"program=sha256:{old.upper()}, program=sha256:{new}"))
    assert ring.roles_of("old-program-key") == ring.roles_of("new-program-key") == {"program"}
    assert ring.roles_of(f"sha256:{old}") == frozenset()  # the digest is not a key
    ring = KeyRing(parse_env_keys(f"program=sha256:{new},auditor=a-key-given-in-clear"))
    assert ring.roles_of("a-key-given-in-clear") == {"auditor"}


@pytest.mark.parametrize("digest", ["abc", "g" * 64, "0" * 63, ""])
def test_a_digest_entry_that_is_not_64_hex_digits_is_refused_unechoed(digest):
    with pytest.raises(InputError) as caught:
        parse_env_keys(f"scientist=a-key-given-in-clear,program=sha256:{digest}")
    message = str(caught.value)
    assert "RECOMMENDER_API_KEYS entry 2: a sha256: entry needs the 64 hex digits" in message
    assert not digest or digest not in message
