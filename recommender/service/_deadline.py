"""The request timeout: 504 when a request has not started its answer within ``timeout`` seconds.

BentoML 1.4's own timeout layer schedules one timer per request and never cancels it, and the
timer holds a copy of the request's context (with its OpenTelemetry span) and a future. Every
request therefore kept about twenty objects alive for the whole timeout (120 s), long after it
was answered: at 190 requests/s about 23,000 requests' worth, which every full collection of
the garbage collector scanned (the worker's oldest generation held 94,000 objects after 70 s of
load, 4,000 without the timers' leftovers; the longest full collection took 117 ms against 18). :class:`Deadline` answers exactly as BentoML's layer does, but its timer holds nothing
of the request and is cancelled as soon as the request is over; ``service.py`` puts it in the
place of BentoML's.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools

__all__ = ["Deadline", "is_bentoml_timeout_layer"]


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

        task = asyncio.ensure_future(self.app(scope, receive, started))
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
                    response = JSONResponse({"error": said}, status_code=504)
                    await response(scope, receive, send)
            else:
                await task  # the response has begun: it is streamed to its end
        finally:
            timer.cancel()  # drops the future; asyncio purges cancelled timers in bulk


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
