"""What a crisis answer says of its flag when no entry of the request holds it, and the
refusals that go with such flags: where it was read (the query string, beside a batch's
entries, the text of a body no parser read, an outcome row) and why the request is refused.

Each is a problem in the API's one shape (field, value, accepted, message), listed in the crisis
answer's ``ignored``; none repeats what the body held.
"""

from __future__ import annotations

__all__ = [
    "beside_entries",
    "nested_in_entry",
    "outcome_flagged",
    "query_notes",
    "refused_by_query",
    "seen_in_text",
    "not_recorded",
    "timed_out_unrecorded",
    "timed_out_unread",
]


def seen_in_text(field: str, read_as: str, given: str = "") -> dict:
    """The problem a crisis answer names when its flag was seen in text no parser read."""
    return {
        "field": field,
        "value": None,
        "accepted": "a JSON object with the documented fields (see /docs.json)",
        "message": f"not read as {read_as}, but its text sets crisis_risk: crisis resources "
        f"for every role{', ' + given if given else ''}",
    }


def nested_in_entry(field: str) -> dict:
    """The problem a crisis answer names when its entry's flag was inside another field."""
    return {
        "field": field,
        "value": None,
        "accepted": "crisis_risk as a field of the entry itself (see /docs.json)",
        "message": "a field nested in this entry sets crisis_risk: crisis resources and no "
        "ranking for this person",
    }


def query_notes(query, given: str) -> list[dict]:
    """Where a request's crisis flag was read, when its query string set it: ``[note]``."""
    if query is None:
        return []
    name, value = query
    return [
        {
            "field": f"query string: {name[:60]}",
            "value": value if isinstance(value, bool) else str(value)[:20],
            "accepted": "crisis_risk in the JSON body (see /docs.json)",
            "message": f"read from the query string as a crisis flag: {given}",
        }
    ]


def refused_by_query(query, accepted: str) -> tuple[int, dict]:
    """The 422 of a valid body whose query string flags the request, and no one entry."""
    name = query[0][:60]
    message = "a crisis flag for the request, not for one entry of its body"
    return 422, {
        "error": f"query string: {name}: {message}; accepted: {accepted}",
        "problems": [
            {
                "field": f"query string: {name}",
                "value": query[1] if isinstance(query[1], bool) else str(query[1])[:20],
                "accepted": accepted,
                "message": message,
            }
        ],
    }


def beside_entries() -> dict:
    return {
        "field": "crisis_risk",
        "value": None,
        "accepted": "crisis_risk in each flagged entry (see /docs.json)",
        "message": "set beside the entries, not in one: crisis resources for every role, once "
        "for the request (which entry it flags cannot be told)",
    }


def outcome_flagged(i: int) -> dict:
    return {
        "field": f"outcomes[{i}].crisis_risk",
        "value": None,
        "accepted": "crisis_risk on /recommend, /recommend_batch or /allocate",
        "message": "not an outcome's field, but it flags this person for crisis risk: crisis "
        "resources for every role; no outcome of the request was recorded",
    }


def not_recorded(status: int) -> str:
    return (
        f"not recorded: the request was refused ({status}), so nothing of it was written to "
        "the audit log"
    )


def timed_out_unrecorded() -> str:
    """The ``recorded_in`` of a crisis answer a 504 carries that its request had not given: it
    was made for the 504, and what the request itself recorded cannot be known."""
    return (
        "not confirmed: the request timed out (504) before this crisis answer's record was "
        "confirmed, so it may not be recorded; the service may still record the request's "
        "crisis answer (in the audit log, or in the service log if the store fails), under "
        "another request_id than this one's"
    )


def timed_out_unread() -> dict:
    """The problem a 504's crisis answer names when its request's flags could not be read in
    time: the resources of every role, once for the request."""
    return {
        "field": "body",
        "value": None,
        "accepted": "a request answered within the request timeout",
        "message": "the request timed out and its crisis flags could not be read in time: "
        "crisis resources for every role, once for the request",
    }
