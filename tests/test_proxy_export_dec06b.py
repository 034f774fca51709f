"""configs/nginx.conf.example waits for the audit export longer than for any other route: the
service reads the whole export before it sends the first byte."""

from __future__ import annotations

import re
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "configs" / "nginx.conf.example"
_UNITS = {"s": 1, "m": 60, "h": 3600}


def _seconds(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([smh]?)", value).groups()
    return int(number) * _UNITS[unit or "s"]


def test_the_audit_export_has_its_own_long_read_timeout():
    text = EXAMPLE.read_text()
    server_wide = re.search(r"^        proxy_read_timeout (\S+);", text, re.MULTILINE)
    export = re.search(r"location = /audit/export \{([^}]*)\}", text)
    assert server_wide and export
    (timeout,) = re.findall(r"proxy_read_timeout (\S+);", export.group(1))
    assert _seconds(timeout) >= 10 * 60 > _seconds(server_wide.group(1))
    assert "proxy_pass http://recommender;" in export.group(1)
    # headers stay inherited from the server block: a location setting one would drop them all
    assert "proxy_set_header" not in export.group(1)
