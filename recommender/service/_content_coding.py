"""A request body sent compressed (``Content-Encoding: gzip`` or ``deflate``), read as sent.

Some HTTP clients compress what they post. The front door reads such a body as its coding says,
up to the limit of any body (a small compressed body may expand a thousandfold: what lies
beyond the limit is never inflated), so its crisis flags are read like any other's; read as it
came, it was refused as not JSON, a flagged one without its resources. A coding the service
does not read is refused (415) naming it and the codings it reads.
"""

from __future__ import annotations

import zlib

__all__ = ["ACCEPTED_CODINGS", "UnreadCoding", "decode_body"]

ACCEPTED_CODINGS = "gzip, deflate or identity (none)"
_GZIP_OR_ZLIB = 32 + zlib.MAX_WBITS  # zlib tells the two by their header
_RAW_DEFLATE = -zlib.MAX_WBITS  # what some clients send as deflate


class UnreadCoding(ValueError):
    """A body in a content coding the service does not read (``status`` 415), or not in the
    coding it names (400)."""

    def __init__(self, coding: str, message: str, status: int):
        super().__init__(message)
        self.coding, self.status = coding, status

    def refusal(self) -> tuple[int, dict]:
        """(status, payload) naming the header, its coding and what is accepted."""
        return self.status, {
            "error": f"Content-Encoding: {self.coding}: {self}; accepted: {ACCEPTED_CODINGS}",
            "problems": [
                {
                    "field": "Content-Encoding",
                    "value": self.coding,
                    "accepted": ACCEPTED_CODINGS,
                    "message": str(self),
                }
            ],
        }


def decode_body(body: bytes, codings: str, limit: int) -> tuple[bytes, bool]:
    """``(body, too_large)``: ``body`` undone of each coding of a Content-Encoding header
    (``"gzip"``, ``"deflate, gzip"``), at most ``limit`` bytes of it; ``too_large`` when more
    was there. Raises :class:`UnreadCoding`.

    A stream cut short (a body larger than the front door reads) gives what it holds.

    Examples
    --------
    >>> import gzip
    >>> decode_body(gzip.compress(b'{"crisis_risk": true}'), "gzip", 100)
    (b'{"crisis_risk": true}', False)
    >>> decode_body(gzip.compress(b"x" * 1000), "GZIP", 10)
    (b'xxxxxxxxxx', True)
    """
    too_large = False
    names = [name.strip().lower() for name in codings.split(",") if name.strip()]
    for name in reversed(names):  # applied in the order listed: undone from the last
        if name == "identity":
            continue
        if name not in ("gzip", "x-gzip", "deflate"):
            raise UnreadCoding(name[:40], "not a coding this service reads", 415)
        try:
            body, more = _inflate(body, _GZIP_OR_ZLIB, limit)
        except zlib.error:
            if name != "deflate":
                raise UnreadCoding(name, f"the body is not {name} data", 400) from None
            try:
                body, more = _inflate(body, _RAW_DEFLATE, limit)
            except zlib.error:
                raise UnreadCoding(name, "the body is not deflate data", 400) from None
        too_large = too_large or more
    return body, too_large


def _inflate(data: bytes, wbits: int, limit: int) -> tuple[bytes, bool]:
    """``(data inflated, at most limit bytes of it; whether there was more)``, of each member of
    a stream written in several (``cat a.gz b.gz``, which gzip itself reads as one).

    >>> _inflate(zlib.compress(b"ab") + zlib.compress(b"cd"), _GZIP_OR_ZLIB, 3)
    (b'abc', True)
    """
    out = b""
    while data and len(out) <= limit:
        inflater = zlib.decompressobj(wbits)
        out += inflater.decompress(data, limit + 1 - len(out))
        if not inflater.eof:  # cut short, or over the limit
            break
        data = inflater.unused_data
    return out[:limit], len(out) > limit
