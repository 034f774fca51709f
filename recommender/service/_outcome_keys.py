"""Idempotency keys of ``POST /outcomes``: a submission sent again is answered as it was.

A program whose ``POST /outcomes`` timed out cannot tell whether its outcomes were recorded, and
sent again without a key a recorded submission is refused as a duplicate (409), as a submission
conflicting with stored outcomes is. With an ``Idempotency-Key`` header (the field of the IETF
HTTPAPI draft "The Idempotency-Key HTTP Header Field", as Stripe and others take it) the first
submission that records its outcomes has its answer kept with the key, in the same transaction
as its outcomes; the same key with the same body is then answered with that answer (its status
and its very bytes) and an ``Idempotent-Replayed: true`` header, recording nothing again; the
same key with another body is refused (422, as the draft says), naming the key.

Keys are the caller's own: kept under a digest of the API key that sent them with the key (so
two programs' keys never meet) and the body under a digest, both keyed with the audit salt (a
body holds person ids). A refused submission records nothing and keeps no answer: the key stays
unused, for that submission corrected or for another. A key is kept as long as the store is; a
request without the header is answered as it always was.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from starlette.responses import Response

from recommender.service._audit import AuditLog
from recommender.service._audit_tables import outcome_submissions

__all__ = [
    "IDEMPOTENCY_HEADER",
    "REPLAYED_HEADER",
    "KEY_ACCEPTED",
    "KeyRefused",
    "SubmissionKey",
    "read_key",
    "submission_key",
    "answered_before",
    "not_permitted",
]

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_CHARS = 255
KEY_ACCEPTED = (
    f"one {IDEMPOTENCY_HEADER} header of 1 to {MAX_KEY_CHARS} printable ASCII characters "
    "(space to '~'), as it is or as a quoted string (\"...\", the IETF draft's form); a new "
    "UUID for each submission is a good key"
)
# SQLSTATE insufficient_privilege: a role granted before revision 0010.
_MAY_NOT = "42501"


class KeyRefused(Exception):
    """The key cannot be used: not a valid header (400), or used before with another body
    (422). ``problems`` as the service's refusals list them."""

    def __init__(self, status: int, message: str, problems: list[dict]):
        super().__init__(message)
        self.status = status
        self.problems = problems


def _refused(status: int, value, message: str, accepted: str = KEY_ACCEPTED) -> KeyRefused:
    problem = {
        "field": IDEMPOTENCY_HEADER,
        "value": value,
        "accepted": accepted,
        "message": message,
    }
    return KeyRefused(status, f"{IDEMPOTENCY_HEADER}: {message}; accepted: {accepted}", [problem])


def read_key(lines: Sequence[str]) -> str | None:
    """The idempotency key of a request's ``Idempotency-Key`` header lines (``None``: none).

    Examples
    --------
    >>> read_key([]), read_key(["8e03978e-40d5"]), read_key(['"8e03978e-40d5"'])
    (None, '8e03978e-40d5', '8e03978e-40d5')

    Raises
    ------
    KeyRefused
        400, naming the header: given more than once, empty, longer than 255 characters, or
        holding a character other than printable ASCII (named by its code point).
    """
    if not lines:
        return None
    if len(lines) > 1:
        # Which one names the submission is no guess to make (the draft: at most one).
        raise _refused(400, None, f"given {len(lines)} times; send it once")
    text = lines[0].strip()
    key = _unquoted(text) if len(text) >= 2 and text[0] == text[-1] == '"' else text
    for position, char in enumerate(key):
        if not " " <= char <= "~":
            # A header's bytes are read as latin-1, one character a byte: a letter beyond ASCII
            # sent as UTF-8 arrives as the bytes of its encoding, which is what is named.
            raise _refused(
                400,
                "(not shown)",
                f"holds the byte 0x{ord(char):02X} at byte {position + 1} of the key, which is "
                "not printable ASCII",
            )
    if not key:
        raise _refused(400, text, "empty")
    if len(key) > MAX_KEY_CHARS:
        raise _refused(400, f"{key[:40]}...", f"{len(key)} characters long")
    return key


def _unquoted(text: str) -> str:
    """The content of an RFC 8941 sf-string: ``\\"`` and ``\\\\`` are its only escapes."""
    chars, escaped = [], False
    for char in text[1:-1]:
        if escaped:
            if char not in '"\\':
                raise _refused(
                    400, text[:60], f"a quoted key escapes {char!r} ('\\' escapes only \" and \\)"
                )
            chars.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            raise _refused(400, text[:60], "a quoted key holds an unescaped '\"'")
        else:
            chars.append(char)
    if escaped:
        raise _refused(400, text[:60], "a quoted key ends in a lone '\\'")
    return "".join(chars)


@dataclass(frozen=True)
class SubmissionKey:
    """A submission's key as the store keeps it: ``key`` (as sent, for messages), and the
    digests of the caller with the key and of the body."""

    key: str
    key_digest: str
    body_digest: str

    def row(self, answer: Response, at: datetime) -> dict:
        """The ``outcome_submissions`` row keeping ``answer`` (written with the outcomes)."""
        return {
            "key_digest": self.key_digest,
            "body_digest": self.body_digest,
            "recorded_at": at,
            "status": answer.status_code,
            "answer": bytes(answer.body).decode("utf-8"),
        }


def submission_key(
    audit: AuditLog, key: str, caller: str, outcomes: Sequence[Mapping], correct: bool
) -> SubmissionKey:
    """``key`` sent by ``caller`` (its API key's digest) with this body, as digests keyed with
    the audit salt. The body is read as its JSON values: the same outcomes, whatever the
    order of their fields or the spaces between them, are the same body."""
    body = json.dumps(
        {"correct": correct, "outcomes": list(outcomes)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    # The store's keyed digest (its person hash): a body holds person ids, and a program may
    # have made its key of one.
    return SubmissionKey(
        key=key,
        key_digest=audit.person_hash(f"outcomes idempotency key\n{caller}\n{key}"),
        body_digest=audit.person_hash(f"outcomes body\n{body}"),
    )


def answered_before(audit: AuditLog, submission: SubmissionKey) -> Response | None:
    """The answer kept for this key, sent again with ``Idempotent-Replayed: true``; ``None``
    when the key has recorded nothing yet.

    Raises
    ------
    KeyRefused
        422: the key recorded another body.
    """
    with audit.engine.connect() as connection:
        kept = connection.execute(
            sa.select(
                outcome_submissions.c.body_digest,
                outcome_submissions.c.status,
                outcome_submissions.c.answer,
                outcome_submissions.c.recorded_at,
            ).where(outcome_submissions.c.key_digest == submission.key_digest)
        ).first()
    if kept is None:
        return None
    if kept.body_digest != submission.body_digest:
        at = kept.recorded_at.replace(microsecond=0).isoformat()
        raise _refused(
            422,
            submission.key,
            f"the key {submission.key!r} was used by a submission recorded at {at}, and this "
            "body differs from that submission's; nothing was recorded",
            "the body first sent with this key, to have its answer again, or a new key for "
            "another submission",
        )
    return Response(
        kept.answer.encode("utf-8"),
        status_code=kept.status,
        media_type="application/json",
        headers={REPLAYED_HEADER: "true"},
    )


def not_permitted(error: BaseException) -> str | None:
    """What to say of a store whose role may not use ``outcome_submissions`` (granted before
    revision 0010), from the database's error; ``None`` for any other error. The role is not
    named: the answer goes to the caller, the operator knows it."""
    if getattr(getattr(error, "orig", None), "sqlstate", None) != _MAY_NOT:
        return None
    return (
        f"the audit store's role may not read or append to outcome_submissions, which a POST "
        f"/outcomes with {IDEMPOTENCY_HEADER} uses (revision 0010); nothing was recorded. As "
        "the tables' owner run: GRANT SELECT, INSERT ON TABLE outcome_submissions TO <the "
        "service's role>; "
        f"meanwhile a submission sent without {IDEMPOTENCY_HEADER} is answered as before"
    )
