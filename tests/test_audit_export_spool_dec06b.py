"""GET /audit/export's spool (a temporary file of up to GBs) is closed however the read ends
before the response takes it over: a store's error, a cancelled request, a Ctrl-C."""

from __future__ import annotations

import asyncio
import tempfile

import pytest

from recommender.service import _pages


@pytest.fixture
def spools(monkeypatch):
    made = []

    class Recorded(tempfile.SpooledTemporaryFile):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", Recorded)
    return made


def _export_ending_with(failure):
    def export(audit, start):
        yield "id,person_hash\n"
        raise failure

    return lambda table: export


@pytest.mark.parametrize(
    "failure", [asyncio.CancelledError(), KeyboardInterrupt(), SystemExit(143)], ids=type
)
def test_the_spool_is_closed_when_the_read_is_stopped(spools, monkeypatch, failure):
    monkeypatch.setattr(_pages, "export_of", _export_ending_with(failure))
    with pytest.raises(type(failure)):
        _pages.audit_export_response(object(), None)
    (spool,) = spools
    assert spool.closed


def test_the_spool_is_closed_on_a_store_error_and_open_when_handed_over(spools, monkeypatch):
    monkeypatch.setattr(_pages, "export_of", _export_ending_with(OSError("disk gone")))
    assert _pages.audit_export_response(object(), None).status_code == 503
    assert spools[-1].closed
    monkeypatch.setattr(_pages, "export_of", lambda table: lambda audit, start: (p for p in "a"))
    answer = _pages.audit_export_response(object(), None)
    assert answer.status_code == 200 and not spools[-1].closed  # the response closes it
    spools[-1].close()
