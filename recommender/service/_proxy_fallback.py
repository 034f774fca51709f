"""What a proxy in front of the service answers when the service does not: the crisis resources.

A proxy answers some requests itself: 502 or 504 when the service is stopped or too slow, 413
for a body over its limit, 429 past a client's request rate. Its own pages say nothing of
crisis resources, so a crisis-flagged request would get none: the example configuration
(``configs/nginx.conf.example``) answers those failures on the profile routes with these
static bodies instead (``recommender crisis-fallback --out DIR`` writes them).

A proxy reads no body, so it cannot tell a flagged request from another, nor the person's
role: every body carries the crisis resources of a flagged person whose role is unknown (every
resource, each saying whom it serves), as :func:`~recommender.policy.triage` gives them, and
says that no recommendation was made. Nothing is recorded: the service never saw the request.
"""

from __future__ import annotations

from recommender.policy import triage
from recommender.service._crisis import safety_block

__all__ = ["proxy_fallbacks"]

# The routes whose requests may carry a crisis flag (the service answers flags on each).
PROFILE_ROUTES = ("/recommend", "/recommend_batch", "/allocate", "/outcomes")

_NOT_MADE = (
    "no recommendation or plan was made and nothing was recorded. The proxy cannot read the "
    "request, so these crisis resources are given with every such answer, for any person "
    "flagged for crisis risk (for every role: the proxy does not know the person's)"
)

_NOWHERE = "nowhere: the proxy answered, the service never saw the request"

# File name -> (HTTP statuses the proxy answers with it, what happened, what is accepted).
FALLBACK_FILES = {
    "unavailable.json": (
        (500, 502, 503, 504),
        "the recommendation service is unavailable (the proxy in front of it got no answer "
        "from it: it is stopped, failed, or took too long)",
        "the same request again later",
    ),
    "too_large.json": (
        (413,),
        "the request body is larger than the proxy accepts, and was refused unread",
        "a body of at most {max_body}",
    ),
    "too_many_requests.json": (
        (429,),
        "too many requests from this client; the proxy refused this one unread",
        "fewer requests per second from one client",
    ),
}


def proxy_fallbacks(rules, *, max_body: str | None = None) -> dict[str, dict]:
    """The proxy's answers, by file name (:data:`FALLBACK_FILES`), for the safety rules
    ``rules`` (:class:`~recommender.policy.SafetyRules`, ``serve.yaml``'s ``safety``).

    Each is the service's refusal body (``error``, ``problems``) with one crisis answer for the
    request as a whole in ``crisis_results`` (``index`` null), whose ``recorded_in`` says that
    nothing was recorded. ``max_body``: the body limit the proxy's 413 names (default: the
    most the service reads, ``MAX_BODY_BYTES``).

    Examples
    --------
    >>> from recommender.policy import SafetyRules
    >>> rules = SafetyRules.from_config({"referral_rules": [], "referral_notice": "see someone",
    ...     "crisis_notice": "call now", "crisis_resources": [{"name": "988", "contact": "988"}]})
    >>> body = proxy_fallbacks(rules)["unavailable.json"]
    >>> body["error"].startswith("the recommendation service is unavailable")
    True
    >>> answer = body["crisis_results"][0]["answer"]
    >>> answer["recommended"], [r["name"] for r in answer["safety"]["resources"]]
    (None, ['988'])
    """
    if max_body is None:
        from recommender.service._gate import MAX_BODY_BYTES

        max_body = f"{MAX_BODY_BYTES // 2**20} MiB"
    bodies = {}
    for name, (_statuses, happened, accepted) in FALLBACK_FILES.items():
        accepted = accepted.format(max_body=max_body)
        bodies[name] = {
            "error": f"{happened}; {_NOT_MADE}; accepted: {accepted}",
            "problems": [
                {"field": "request", "value": None, "accepted": accepted, "message": happened}
            ],
            "crisis_results": [
                {"index": None, "answer": request_crisis_answer(rules, recorded_in=_NOWHERE)}
            ],
        }
    return bodies


def request_crisis_answer(rules, *, recorded_in: str) -> dict:
    """One crisis answer for a request whose flags and role are not read: every role's
    resources (each saying whom it serves) from ``rules`` alone, no recommendation. Made of
    nothing that can fail but the rules: what a proxy answers, and a timed-out request's 504
    when its own crisis answers cannot be made in time."""
    return {
        "request_id": None,
        "recommended": None,
        "ranking": [],
        "explanation": None,
        "assignment": None,
        "safety": safety_block(triage({}, rules, crisis_risk=True), recorded_in=recorded_in),
    }
