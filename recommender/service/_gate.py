"""The service's front door, as plain ASGI middleware: API keys first, then the request body.

Every protected route is checked here before BentoML sees the request, so a caller without a
key gets 401, a caller with the wrong role 403, and a malformed body 400/422 with problems that
name the field, the value and what is accepted (BentoML's own validation errors omit the value).
A body that passes is handed on unchanged, as ``application/json``.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from recommender.service._auth import authorize

__all__ = ["Gate", "MAX_BODY_BYTES"]

# A 10,000-row batch is about 3 MB of JSON; anything far beyond is not a request we serve.
MAX_BODY_BYTES = 32 * 1024 * 1024


def _json_response(status: int, payload: dict, headers: dict | None = None):
    from starlette.responses import JSONResponse

    return JSONResponse(payload, status_code=status, headers=headers)


class Gate:
    """ASGI middleware: authorization and request validation for the service's routes.

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    current : callable
        Returns the live service object (with ``keyring`` and ``config``), or ``None`` while it
        is starting.
    """

    def __init__(self, app, *, current: Callable[[], object]):
        self.app = app
        self.current = current

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        service = self.current()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        if service is None:
            from recommender.service._auth import PERMISSIONS

            if path.rstrip("/") in PERMISSIONS:
                response = _json_response(503, {"error": "the service is starting", "problems": []})
                return await response(scope, receive, send)
            return await self.app(scope, receive, send)
        decision = authorize(path, headers, service.keyring)
        if decision.status != 200:
            extra = {"WWW-Authenticate": "Bearer"} if decision.status == 401 else None
            response = _json_response(decision.status, {"error": decision.message,
                                                         "problems": []}, extra)
            return await response(scope, receive, send)
        if decision.role is None:
            return await self.app(scope, receive, send)
        scope.setdefault("state", {})["caller_role"] = decision.role
        body_model = service.body_models.get(path.rstrip("/"))
        if body_model is None or scope.get("method") != "POST":
            return await self.app(scope, receive, send)

        body, too_large = await _read_body(receive)
        if too_large:
            response = _json_response(413, {
                "error": f"the request body is larger than {MAX_BODY_BYTES:,} bytes",
                "problems": [{"field": "body", "value": None, "accepted":
                              f"at most {MAX_BODY_BYTES:,} bytes", "message": "too large"}]})
            return await response(scope, receive, send)
        model, known, accepted = body_model
        body = body if body.strip() else b"{}"  # no body is an empty object, not a JSON error
        try:
            model.model_validate_json(body)
        except ValidationError as error:
            from recommender.service._schemas import problems_from

            problems = problems_from(error, known=known, accepted=accepted)
            status = 400 if any(p["message"].startswith("Invalid JSON") for p in problems) else 422
            first = problems[0]
            response = _json_response(status, {
                "error": f"{first['field']}: {first['message']}; accepted: {first['accepted']}"
                         + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                "problems": problems})
            return await response(scope, receive, send)

        # Hand the checked body on as JSON whatever Content-Type the caller claimed, so no
        # other parser (multipart, pickle) ever sees it.
        scope = dict(scope)
        scope["headers"] = [(k, v) for k, v in scope.get("headers", [])
                            if k.lower() not in (b"content-type", b"content-length")]
        scope["headers"] += [(b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode())]
        return await self.app(scope, _replay(body, receive), send)


async def _read_body(receive) -> tuple[bytes, bool]:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), False


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay

