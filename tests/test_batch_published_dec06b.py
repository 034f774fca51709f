"""``batch-score`` stopped once its table is in place: found, the interrupt still wrote
``<out>.crisis.csv`` saying that nothing was scored, beside the table that scored everyone."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


def _spark(cancelled: list):
    """What crisis_rows_when_stopped asks of Spark: tags on its jobs."""
    context = SimpleNamespace(
        addJobTag=lambda tag: None,
        removeJobTag=lambda tag: None,
        cancelJobsWithTag=cancelled.append,
    )
    return SimpleNamespace(sparkContext=context)


def test_stopped_after_the_table_is_published_writes_no_crisis_file_and_says_where_it_is(
    tmp_path,
):
    from pipelines._batch_crisis import crisis_rows_when_stopped

    def unread(*args):  # the flagged rows are not looked up: the table has their answers
        raise AssertionError("looked up the flagged rows")

    cancelled, out = [], tmp_path / "scored.parquet"
    with pytest.raises(KeyboardInterrupt) as caught:
        with crisis_rows_when_stopped(_spark(cancelled), unread, None, out) as published:
            published()
            raise KeyboardInterrupt
    assert caught.value.left == f"the scored table was written to {out} whole"
    assert list(tmp_path.iterdir()) == [] and cancelled == []
