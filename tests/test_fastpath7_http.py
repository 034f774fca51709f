"""The service's HTTP layers: what each answer costs the worker beyond the engine's work."""

from opentelemetry.sdk.trace import SpanProcessor

from service_fixtures import (  # noqa: F401  (fixtures)
    PROFILE,
    asgi_client,
    auth,
    linear_model,
    service_home,
)


class _Started(SpanProcessor):
    """Records the name of every span started."""

    def __init__(self):
        self.names = []

    def on_start(self, span, parent_context=None):
        self.names.append(span.name)


def test_an_answer_opens_only_its_server_span_and_keeps_its_request_id(asgi_client):
    app = asgi_client.app.app  # KnownRoutes -> BentoML's Starlette app
    asgi_client.post("/recommend", json=PROFILE, headers=auth("program"))  # builds the layers
    (tracing,) = [layer for layer in app.user_middleware if "tracer_provider" in layer.kwargs]
    started = _Started()
    tracing.kwargs["tracer_provider"].add_span_processor(started)
    response = asgi_client.post("/recommend", json=PROFILE, headers=auth("program"))
    assert response.status_code == 200 and response.json()["recommended"]
    # One span per request, the server's: none per ASGI message received or sent.
    assert started.names == ["POST /recommend"]
    # Its id is still the request id BentoML sends (and logs).
    assert int(response.headers["x-bentoml-request-id"], 16) > 0
