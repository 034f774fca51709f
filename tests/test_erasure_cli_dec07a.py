"""An erasure refuses an id longer than any the store holds (``recommender audit erase`` calls
the same ``erase_people`` with each id's line; /erasures refuses it at its edge already), naming
its position, never echoing it, and erasing no one."""

from __future__ import annotations

import pytest

from recommender.errors import InputError
from recommender.service import AuditLog, erase_people


def test_an_id_longer_than_any_stored_is_refused_by_position_and_nothing_is_erased():
    log = AuditLog("sqlite://", salt="s" * 16)
    long_id = "q" * 1001
    with pytest.raises(InputError) as refused:
        erase_people(log, ["p-1", long_id], named=["line 1 of ids.txt", "line 2 of ids.txt"])
    said = str(refused.value)
    assert "line 2 of ids.txt" in said and "1,001 characters" in said and "1,000" in said
    assert long_id not in said
    # 1,000 characters is a stored id's length: looked for, not refused.
    assert erase_people(log, ["q" * 1000], dry_run=True).missing == (0,)
