"""The query string of a protected route: the parameters each route takes, and the refusal of
any other.

A POST route reads its fields from the JSON body alone (the crisis flag aside, on the routes
that read it from the query string); a GET route of ``_GET_PARAMETERS`` takes those listed,
each once. Whatever else a query string holds is refused (422) by :func:`_parameters_not_taken`,
never ignored.
"""

from __future__ import annotations

import re

# The POST routes whose query string is read for the crisis flag (it flags the whole request);
# every other parameter of a POST route is refused, never ignored: a field sent there instead
# of the body (``/erasures?dry_run=true``, ``/allocate?budget=100``) was silently left out,
# and the request done without it (an erasure for good, a plan with no budget).
_FLAG_ROUTES = frozenset({"/recommend", "/recommend_batch", "/allocate", "/outcomes"})
# A parameter's name is shown when it reads as one; another (``?p-000123``, a bare id) is not.
_SHOWN_NAME = re.compile(r"[A-Za-z_][A-Za-z_.\- \[\]]{0,39}")


# The GET routes whose query string is checked, with the parameters each takes; each is read
# once, so one given twice (``?since=A&since=B``: the last was used, silently) is refused, as
# a parameter not listed is (``?from=2026-12-01`` exported the whole log; the card's
# ``?version=3`` answered the served version's card).
_GET_PARAMETERS = {
    "/audit/export": ("since", "table"),
    "/model_card": (),
    "/model_card.json": (),
}
_NO_PARAMETER = {
    "/model_card": "the served model's card takes no query parameter (another version's: "
    "recommender card --model VERSION --out DIR)",
}
_NO_PARAMETER["/model_card.json"] = _NO_PARAMETER["/model_card"]


def _parameters_not_taken(path: str, query: bytes) -> tuple[int, dict] | None:
    """The 422 of a request whose query string holds a parameter the route does not take (on
    a POST route all but the crisis flag's, on the routes that read it), or one of
    ``_GET_PARAMETERS`` given twice, naming each, never its value; None when there is none."""
    if not query:
        return None
    from urllib.parse import unquote_plus

    from recommender.service._crisis import is_flag_name

    route = path.rstrip("/")
    flag = route in _FLAG_ROUTES
    taken = _GET_PARAMETERS.get(route, ())
    names, seen = [], set()
    for part in query.split(b"&"):
        name = unquote_plus(part.partition(b"=")[0].decode("utf-8", "replace"))
        twice = name in taken and name in seen
        seen.add(name)
        if not name or (flag and is_flag_name(name)) or (name in taken and not twice):
            continue
        if (name, twice) not in names:
            names.append((name, twice))
    if not names:
        return None
    if taken:
        accepted = f"each of {', '.join(taken)} at most once, and no other parameter"
    elif route in _NO_PARAMETER:
        accepted = _NO_PARAMETER[route]
    else:
        accepted = "the request's fields in its JSON body (see /docs.json); " + (
            "in the query string only crisis_risk" if flag else "no query parameter"
        )
    not_taken = "not a parameter of this route" + (
        "" if route in _GET_PARAMETERS else ", whose fields are read from the JSON body"
    )
    problems = [
        {
            "field": "query string: "
            + (name if _SHOWN_NAME.fullmatch(name) else "(a parameter; name not shown)"),
            "value": "(not shown)",
            "accepted": accepted,
            "message": "given more than once" if twice else not_taken,
        }
        for name, twice in names
    ]
    message = problems[0]["message"]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return 422, {
        "error": f"{problems[0]['field']}: {message}; accepted: {accepted}{more}",
        "problems": problems,
    }
