"""The crisis answers of a request the request timeout cuts short: its 504 carries them.

The request timeout (:class:`~recommender.service._deadline.Deadline`) answers 504 to a request
whose answer has not begun in time: a store that hangs, a model or a solver past the timeout.
No timeout may withhold crisis resources, so the front door leaves the 504 of a request that may
be flagged (its crisis-lane test, :func:`~recommender.service._crisis.needs_crisis_lane`) the
crisis answers of its flags (:func:`watch`), in ``crisis_results`` as a refusal carries them:

- those the request had already given, recorded (a batch's or plan's crisis rows, answered
  before the model or the solver is called: :func:`crisis_given`), as they were recorded;
- else the crisis answers of its flags made afresh from the body the front door read, recorded
  nowhere, whose ``safety.recorded_in`` says that the request timed out before its record was
  confirmed, so that it may not be recorded;
- and when even those cannot be made in time, one answer for the request with every role's
  resources (:func:`~recommender.service._proxy_fallback.request_crisis_answer`, what a proxy
  answers too).

A request whose body and query flag nothing gets the 504 unchanged.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Mapping

from recommender.service._crisis_notes import timed_out_unread, timed_out_unrecorded
from recommender.service._deadline import overtime
from recommender.service._metrics import count_crisis_answers
from recommender.service._proxy_fallback import request_crisis_answer
from recommender.service._refused import crisis_results

__all__ = ["crisis_given", "timed_out_crisis", "watch"]

log = logging.getLogger("recommender.service")

# The entries of a route's body that a crisis flag is read in (None: the body is one profile).
_ENTRIES = {
    "/recommend": None,
    "/recommend_batch": "profiles",
    "/allocate": "profiles",
    "/outcomes": "outcomes",
}


class _Watched:
    """The crisis answers a request leaves its 504: those given so far (``given``, filled by
    its handler's thread), else ``made()``, else ``fallback()``."""

    __slots__ = ("given", "_made", "_fallback")

    def __init__(self, made: Callable[[], dict], fallback: Callable[[], dict]):
        self.given: dict = {}
        self._made, self._fallback = made, fallback

    def fields(self) -> dict:
        crisis = dict(self.given) or self._made()
        return {"crisis_results": crisis_results(crisis)} if crisis else {}

    def fallback(self) -> dict:
        return {"crisis_results": crisis_results(self._fallback())}


_WATCHED: contextvars.ContextVar[_Watched | None] = contextvars.ContextVar(
    "recommender_crisis_watched", default=None
)


def watch(service, route: str, body: bytes, query) -> None:
    """Leave the 504 of the request under way (in its task, before its handler's thread
    starts) the crisis answers of ``body`` and ``query`` (:func:`crisis_in_query`'s) sent to
    ``route``, should the request timeout cut it short. Nothing outside a request timeout, or
    on a route that answers no profiles."""
    left = overtime()
    if left is None or route not in _ENTRIES:
        return
    watched = _Watched(
        lambda: timed_out_crisis(service, route, body, query),
        lambda: {None if _ENTRIES[route] else 0: _fallback_answer(service)},
    )
    left.fields, left.fallback = watched.fields, watched.fallback
    _WATCHED.set(watched)


def crisis_given(crisis: Mapping) -> None:
    """Note ``{index: crisis answer}`` as given and recorded by the request under way: its
    504, should the timeout come now, carries them as they are (a no-op outside a watched
    request). The answers are not changed afterwards."""
    watched = _WATCHED.get()
    if watched is not None:
        watched.given.update(crisis)


def timed_out_crisis(service, route: str, body: bytes, query) -> dict:
    """``{index: crisis answer}`` for every flag of a request sent to ``route`` that timed out,
    recorded nowhere (see :func:`~recommender.service._crisis_notes.timed_out_unrecorded`):
    of a JSON body as a refused caller's are read, else one answer for the request when its
    text sets the flag; ``{}`` when nothing flags it."""
    entries = _ENTRIES[route]
    unrecorded = timed_out_unrecorded()
    try:
        return service._unrecorded_crisis(body, query, entries, unrecorded)
    except (ValueError, RecursionError):  # a body no parser reads (refused 400): its text
        return service._flagged_request(
            body, None, None, single=entries is None, query=query, unrecorded=unrecorded
        )


def _fallback_answer(service) -> dict:
    answer = request_crisis_answer(service.config.safety, recorded_in=timed_out_unrecorded())
    answer["ignored"] = [timed_out_unread()]
    log.warning("1 crisis answer given for a timed-out request, %s", timed_out_unrecorded())
    count_crisis_answers(1, "nowhere")
    return answer
