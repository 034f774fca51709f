"""The service's own page at ``/``: what it is, who may call what, and where the details are.

Plain HTML with inline style and nothing loaded from anywhere (BentoML's default page loads a
third-party tag-manager script into the browsers of the staff who open it).
"""

from __future__ import annotations

import functools
import html
import re

from recommender.service._auth import PERMISSIONS

__all__ = ["landing_page"]

_WHAT = {
    "/recommend": "POST one profile: the offered interventions ranked, with intervals, reasons "
    "and safety triage",
    "/recommend_batch": "POST up to 10,000 profiles at once",
    "/allocate": "POST a cohort with a budget and capacities: who gets which intervention",
    "/reload": "POST: serve the registry's current champion without a restart",
    "/outcomes": "POST follow-up scores (EE, DP, PA, arm taken) of people already served",
    "/erasures": "POST person ids to erase from the audit store (withdrawn consent, a leaver)",
    "/model_card": "GET the served model's card (HTML)",
    "/model_card.json": "GET the served model's card (JSON)",
    "/audit/export": "GET the audit log as CSV (hashed person ids); ?since=ISO date or time, "
    "UTC unless it carries an offset; ?table=outcomes for every outcome and correction, "
    "?table=erasures for every erasure (when, how many; never whose)",
}
_OPEN = (
    ("/docs.json", "the OpenAPI document: every route, field and accepted value"),
    ("/livez, /readyz", "health"),
    ("/metrics", "Prometheus metrics"),
)


# Where the page's curl example puts the service's address (never in the cached page itself).
_ADDRESS = "\x00address\x00"
# A Host header the example may repeat: a host name or IPv4 address, or an IPv6 one in brackets,
# with an optional port. Anything else (the header is the sender's to write) is not used.
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?"
)


def landing_page(scope: dict | None = None) -> bytes:
    """The page's HTML for a request's ASGI ``scope``: its curl example names the address the
    page was asked for (the Host header when it is a plain host and port, else the address the
    connection reached); without a scope, ``HOST:PORT``."""
    return _page().replace(_ADDRESS, html.escape(request_address(scope))).encode()


def request_address(scope: dict | None) -> str:
    """``scheme://host[:port]`` of the request, for a command to paste (see landing_page).

    >>> request_address({"scheme": "http", "headers": [(b"host", b"10.0.0.5:3000")]})
    'http://10.0.0.5:3000'
    >>> request_address({"scheme": "http", "headers": [(b"host", b'x"><b>')],
    ...                  "server": ("127.0.0.1", 3000)})
    'http://127.0.0.1:3000'
    """
    if scope is None:
        return "http://HOST:PORT"
    scheme = "https" if scope.get("scheme") == "https" else "http"
    host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
    if not _HOST.fullmatch(host):
        server = scope.get("server") or (None, None)
        if server[1] is None:  # a Unix socket, or no server address known
            host = "HOST:PORT"
        else:
            host = f"[{server[0]}]:{server[1]}" if ":" in server[0] else f"{server[0]}:{server[1]}"
    return f"{scheme}://{host}"


@functools.cache
def _page() -> str:
    """The page's HTML but for the address (built once)."""
    rows = "".join(
        f'<tr><th scope="row"><code>{html.escape(path)}</code></th>'
        f"<td>{html.escape(', '.join(sorted(roles)))}</td>"
        f"<td>{html.escape(_WHAT.get(path, ''))}</td></tr>"
        for path, roles in PERMISSIONS.items()
    )
    rows += "".join(
        f'<tr><th scope="row"><code>{html.escape(path)}</code></th><td>anyone</td>'
        f"<td>{html.escape(what)}</td></tr>"
        for path, what in _OPEN
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>burnout-recommender: the service, its routes and roles</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:56rem;margin:2rem auto;padding:0 1rem;
line-height:1.45}}table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ccc;
padding:.3rem .5rem;text-align:left;vertical-align:top}}.note{{background:#fff4d6;
padding:.6rem .8rem;border-left:4px solid #c90}}.wide{{overflow-x:auto}}
@media (max-width:24rem){{td,th{{padding:.3rem .25rem}}}}
@media (width<22.5rem){{td code{{overflow-wrap:anywhere}}}}
a:focus-visible,[tabindex]:focus-visible{{outline:3px solid #1f5f7f;outline-offset:2px}}</style>
</head>
<body><main>
<h1>burnout-recommender</h1>
<p>Tells a clinician wellness program which intervention (professional coaching, mindfulness, a
peer-support group, resilience training, a Balint group, or none) is expected to help a given
physician, resident, nurse or advanced practice provider most, how sure it is, and why.</p>
<p class="note">A recommendation supports a choice; it never diagnoses. A request flagged for
crisis risk gets crisis resources and no ranking.</p>
<h2>Routes</h2>
<p>Send an API key as <code>Authorization: Bearer KEY</code> or <code>x-api-key: KEY</code>;
each key has one role. The fields each route accepts are in
<a href="/docs.json">/docs.json</a>; auditors and scientists read the served model's card at
<a href="/model_card">/model_card</a>. A browser's address bar cannot send the key (and a key
never goes in an address), so save the card with it and open the file, your key in the shell
variable <code>KEY</code>:
<code>curl -H "Authorization: Bearer $KEY" -o card.html {_ADDRESS}/model_card</code>.</p>
<div class="wide" role="region" tabindex="0" aria-labelledby="routes"><table>
<caption id="routes">Routes and the roles that may call them</caption>
<tr><th scope="col">route</th><th scope="col">who</th><th scope="col">what</th></tr>{rows}</table>
</div>
</main></body></html>
"""
