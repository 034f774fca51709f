"""The request timeout: 504 when a request has not started its answer within ``timeout`` seconds.

BentoML 1.4's own timeout layer schedules one timer per request and never cancels it, and the
timer holds a copy of the request's context (with its OpenTelemetry span) and a future. Every
request therefore kept about twenty objects alive for the whole timeout (120 s), long after it
was answered: at 190 requests/s about 23,000 requests' worth, which every full collection of
the garbage collector scanned (the worker's oldest generation held 94,000 objects after 70 s of
load, 4,000 without the timers' leftovers; the longest full collection took 117 ms against 18). :class:`Deadline` answers exactly as BentoML's layer does, but its timer holds nothing
of the request and is cancelled as soon as the request is over; ``service.py`` puts it in the
place of BentoML's.

A layer inside it may leave the 504 more to say (:func:`overtime`): the front door leaves the
crisis answers of a request that may be flagged for crisis risk, which no timeout may withhold
(:mod:`~recommender.service._crisis_timeout`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging

__all__ = ["Deadline", "Overtime", "is_bentoml_timeout_layer", "overtime"]

log = logging.getLogger("recommender.service")

# Seconds a 504 waits at most for what its request left it to add (``Overtime.fields``), past
# the request timeout; then it carries ``Overtime.fallback`` instead.
OVERTIME_SECONDS = 2.0


class Overtime:
    """What a request leaves its 504, should the request timeout cut it short: set by a layer
    inside :class:`Deadline` (found with :func:`overtime`), read only once the timeout came.

    ``fields``: a callable returning fields to add to the 504's body (its ``error`` stays), run
    on a thread for at most :data:`OVERTIME_SECONDS`; ``fallback``: a cheap callable whose
    fields are added instead when ``fields`` fails or takes longer. Both ``None``: the 504 is
    BentoML's, unchanged.
    """

    __slots__ = ("fields", "fallback")

    def __init__(self) -> None:
        self.fields = None
        self.fallback = None


_OVERTIME: contextvars.ContextVar[Overtime | None] = contextvars.ContextVar(
    "recommender_overtime", default=None
)


def overtime() -> Overtime | None:
    """The :class:`Overtime` of the request under way (in its task, or a thread it started);
    ``None`` outside :class:`Deadline`."""
    return _OVERTIME.get()


class Deadline:
    """ASGI middleware: a request that has not begun its response within ``timeout`` seconds
    is cancelled and answered 504 (BentoML's ``TimeoutMiddleware``, same status and body).

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    timeout : float
        Seconds before the first response message.
    past : mapping, optional
        What the 504 adds, by path, about work that goes on past it: a request's thread cannot
        be stopped, only its answer (an erasure goes on to its end).
    """

    def __init__(self, app, timeout: float, past: dict[str, str] | None = None):
        self.app = app
        self.timeout = timeout
        self.past = past or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        # An empty context: the timer must not keep the request's context (its span) alive.
        timer = loop.call_later(self.timeout, _expire, waiter, context=contextvars.Context())

        async def started(message) -> None:
            if not waiter.done():
                waiter.set_result(None)
            await send(message)

        # The app runs in a context of its own holding the request's Overtime (its threads
        # copy it): what it leaves there reaches the 504, and nothing else does.
        context = contextvars.copy_context()
        left = Overtime()
        context.run(_OVERTIME.set, left)
        task = loop.create_task(self.app(scope, receive, started), context=context)
        # An app that fails (or returns) before its first message has no response to wait for:
        # its error goes on at once to the layers outside, which answer 500. Waiting for the
        # timer instead held the request for the whole timeout and then dropped the error,
        # returning no response at all (found: GET /metrics in process, where BentoML's
        # Prometheus client raises without `bentoml serve`'s multiprocess folder).
        task.add_done_callback(functools.partial(_over, waiter))
        try:
            try:
                await waiter
            except asyncio.TimeoutError:
                if task.cancel():
                    from starlette.responses import JSONResponse

                    said = f"Not able to process the request in {self.timeout} seconds"
                    if scope.get("path") in self.past:
                        said += f": {self.past[scope['path']]}"
                    more = await _overtime_fields(left)
                    more.pop("error", None)  # the error clients read stays BentoML's
                    response = JSONResponse({"error": said, **more}, status_code=504)
                    await response(scope, receive, send)
            else:
                await task  # the response has begun: it is streamed to its end
        finally:
            timer.cancel()  # drops the future; asyncio purges cancelled timers in bulk


async def _overtime_fields(left: Overtime) -> dict:
    """The fields ``left`` adds to a 504: never an exception, nor a wait past
    :data:`OVERTIME_SECONDS` (then its fallback's)."""
    if left.fields is None:
        return {}
    try:
        async with asyncio.timeout(OVERTIME_SECONDS):
            return dict(await asyncio.get_running_loop().run_in_executor(None, left.fields))
    except Exception:  # noqa: BLE001 - the 504 is sent all the same, with the fallback's fields
        log.exception("what a timed-out request leaves its 504 could not be made in time")
    try:
        return {} if left.fallback is None else dict(left.fallback())
    except Exception:  # noqa: BLE001 - nothing more to add: BentoML's 504
        log.exception("the fallback of a timed-out request's 504 failed")
        return {}


def _over(waiter: asyncio.Future, task: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError)


def is_bentoml_timeout_layer(layer) -> bool:
    """Whether a Starlette ``Middleware`` entry is BentoML's request timeout layer."""
    cls = layer.cls
    return (
        getattr(cls, "__name__", "") == "TimeoutMiddleware"
        and getattr(cls, "__module__", "").startswith("bentoml.")
        and set(layer.kwargs) == {"timeout"}
    )
