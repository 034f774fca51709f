"""Operating the service: what an operator meets that the other reviews did not (dec08a)."""

from __future__ import annotations

import pytest

from recommender.service import AuditSaltMissing, resolve_salt


def test_an_unreadable_salt_file_is_said_as_a_salt_problem(tmp_path):
    # A salt file that cannot be read (here a folder where the file should be; as a user other
    # than the owner, a file of mode 600 gives PermissionError alike) raised a bare OSError: the
    # service's /readyz then said "the audit store could not be opened" with a traceback in the
    # log, and `serve --check` said "ready to serve" with no warning at all.
    (tmp_path / "audit.salt").mkdir()
    with pytest.raises(AuditSaltMissing) as caught:
        resolve_salt(None, tmp_path, create=False)
    message = str(caught.value)
    assert str(tmp_path / "audit.salt") in message
    assert "could not be read" in message
