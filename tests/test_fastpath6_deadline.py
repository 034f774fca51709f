"""The request timeout layer (recommender/service/_deadline.py) in the service's app.

BentoML's own layer left a timer per request holding the request's context for the whole
timeout; :class:`Deadline` answers the same way without keeping anything of a finished request.
"""

import asyncio
import contextvars
import gc
import json
import weakref

from recommender.service._deadline import Deadline, is_bentoml_timeout_layer
from service_fixtures import (  # noqa: F401  (fixtures)
    PROFILE,
    asgi_client,
    auth,
    linear_model,
    service_home,
)

_REQUEST = contextvars.ContextVar("request")


def _serve(middleware, app, scope=None):
    """Messages sent by ``middleware`` around ``app`` for one HTTP request, and whether an
    object put in the request's context is still alive afterwards (the loop still running)."""

    async def main():
        class Marker:
            pass

        marker = Marker()
        alive = weakref.ref(marker)
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        async def request(marker):
            _REQUEST.set(marker)
            await middleware(app)(scope or {"type": "http", "path": "/"}, receive, send)

        await asyncio.create_task(request(marker))
        del marker
        for _ in range(3):  # let the loop run the finished task's wake-up calls
            await asyncio.sleep(0)
        gc.collect()
        return sent, alive() is not None

    return asyncio.run(main())


def _bentoml_timeout_layer():
    """BentoML's own timeout layer, taken from the app BentoML builds for a plain service
    (public names only: ``bentoml.service``, ``to_asgi``, Starlette's middleware list)."""
    import bentoml

    @bentoml.service(traffic={"timeout": 60})
    class Plain:
        @bentoml.api
        def echo(self, text: str) -> str:
            return text

    layers = [layer for layer in Plain.to_asgi().user_middleware if is_bentoml_timeout_layer(layer)]
    assert len(layers) == 1 and layers[0].kwargs == {"timeout": 60}
    return layers[0].cls


async def _quick(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_a_finished_request_keeps_nothing_alive_until_its_timeout():
    sent, alive = _serve(lambda app: Deadline(app, timeout=60), _quick)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert not alive  # the timer was cancelled and never held the request's context


def test_bentoml_s_own_layer_kept_the_request_alive():
    # What Deadline replaces (so the test above can fail): the context outlived the request.
    timeout_layer = _bentoml_timeout_layer()
    _, alive = _serve(lambda app: timeout_layer(app, timeout=60), _quick)
    assert alive


def test_a_request_without_a_response_in_time_is_answered_504_and_cancelled():
    cancelled = []

    async def slow(scope, receive, send):
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    sent, alive = _serve(lambda app: Deadline(app, timeout=0.05), slow)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 504
    assert json.loads(sent[1]["body"]) == {
        "error": "Not able to process the request in 0.05 seconds"
    }
    assert cancelled == [True] and not alive


def test_a_response_begun_in_time_is_sent_to_its_end():
    async def begun(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.2)  # past the timeout: the answer is already under way
        await send({"type": "http.response.body", "body": b"whole"})

    sent, _ = _serve(lambda app: Deadline(app, timeout=0.05), begun)
    assert [m.get("status") for m in sent] == [200, None] and sent[1]["body"] == b"whole"


def test_non_http_scopes_pass_through_untimed():
    seen = []

    async def lifespan(scope, receive, send):
        seen.append(scope["type"])

    sent, _ = _serve(lambda app: Deadline(app, timeout=60), lifespan, {"type": "lifespan"})
    assert seen == ["lifespan"] and sent == []


def test_the_service_app_times_out_with_deadline_at_the_configured_timeout(asgi_client):
    from recommender.service import load_serve_config

    app = asgi_client.app.app  # KnownRoutes -> BentoML's Starlette app
    layers = [(layer.cls, layer.kwargs) for layer in app.user_middleware]
    timeout = load_serve_config().timeout
    assert any(cls is Deadline and kwargs["timeout"] == timeout for cls, kwargs in layers)
    assert not any(is_bentoml_timeout_layer(layer) for layer in app.user_middleware)
    # and the service answers through it
    response = asgi_client.post("/recommend", json=PROFILE, headers=auth("program"))
    assert response.status_code == 200 and response.json()["recommended"]
