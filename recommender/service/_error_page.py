"""A page's refusal as a page: the HTML card's errors, to a browser, in HTML.

``GET /model_card`` is a page; a person who follows the landing page's link to it, or opens it
with the wrong key, is refused (401, 403) or told there is no card (404, 503). Those answers
are the service's error JSON, which a browser showed as a raw dump of braces and quotes. To a
request that asks for HTML (a browser's ``Accept`` names ``text/html``; curl's and API clients'
``*/*`` does not) the same answer goes out as a short page: the same status, headers and
message, what to do next, a link back to ``/``. An answer that holds anything but
``error`` and ``problems`` (a crisis answer) is never rewritten.
"""

from __future__ import annotations

import html
import json
from http import HTTPStatus

from recommender.service._auth import PERMISSIONS

__all__ = ["HTML_PAGES", "error_page", "wants_html", "with_html_errors"]

# The routes that answer a page (HTML) when they succeed.
HTML_PAGES = frozenset({"/model_card"})

# Who may open the card, as the keys' permissions say (the roles are named, never guessed).
_READERS = html.escape(" or ".join(sorted(PERMISSIONS["/model_card"])))
# What the reader can do about each refusal, beside the service's own message.
_NEXT = {
    401: f"The card is shown to a key of the role {_READERS} only, and a browser's address bar "
    "cannot send a key (a key never goes in an address). Save the card with your key and open "
    'the file: <code>curl -H "Authorization: Bearer $KEY" -o card.html '
    "{address}/model_card</code>.",
    403: f"Your key's role may not open the card; ask the service's operator for a key of the "
    f"role {_READERS}, or for the card itself.",
}
_NEXT_OTHERWISE = "Please try again later; if it persists, tell the service's operator."


def wants_html(scope: dict) -> bool:
    """Whether the request asks for HTML by name (a browser's navigation does)."""
    accept = dict(scope.get("headers") or ()).get(b"accept", b"").decode("latin-1").lower()
    return "text/html" in accept


def error_page(status: int, message: str, address: str) -> bytes:
    """The HTML page of a refusal: ``status``, the service's ``message`` and what to do next
    (``address``: the service's, for the command to paste)."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    after = _NEXT.get(status, _NEXT_OTHERWISE).replace("{address}", html.escape(address))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>burnout-recommender: {status} {html.escape(phrase)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:56rem;margin:2rem auto;padding:0 1rem;
line-height:1.45}}code{{overflow-wrap:anywhere}}
a:focus-visible{{outline:3px solid #1f5f7f;outline-offset:2px}}</style>
</head>
<body><main>
<h1>{status} {html.escape(phrase)}: the model card could not be shown</h1>
<p id="error-message"><strong>{html.escape(message)}</strong></p>
<p>{after}</p>
<p><a href="/">The service's page: its routes and who may call them</a></p>
</main></body></html>
""".encode()


def with_html_errors(send, address: str):
    """``send``, with an error answer (4xx, 5xx) of the service's JSON error shape sent as
    :func:`error_page` instead; every other answer passes unchanged."""
    held: dict = {}

    async def send_page(message):
        if message["type"] == "http.response.start" and message["status"] >= 400:
            headers = dict(message.get("headers") or ())
            if headers.get(b"content-type", b"").startswith(b"application/json"):
                held["start"], held["body"] = message, b""
                return None
        if "start" not in held:
            return await send(message)
        if message["type"] != "http.response.body":
            return await send(message)
        held["body"] += message.get("body", b"")
        if message.get("more_body"):
            return None
        start, body = held.pop("start"), held.pop("body")
        page = _page_of(start["status"], body, address)
        if page is None:  # not the plain error shape: as it was
            await send(start)
            return await send({"type": "http.response.body", "body": body})
        headers = [
            (name, value)
            for name, value in start.get("headers") or ()
            if name.lower() not in (b"content-type", b"content-length")
        ]
        headers += [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(page)).encode()),
        ]
        await send({**start, "headers": headers})
        return await send({"type": "http.response.body", "body": page})

    return send_page


def _page_of(status: int, body: bytes, address: str) -> bytes | None:
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or not set(payload) <= {"error", "problems"}:
        return None
    if not isinstance(payload.get("error"), str):
        return None
    return error_page(status, payload["error"], address)
