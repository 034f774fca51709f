"""The cyclic collector held off while a batch is answered (issue 12, dec08a): it is on again
after every batch, however batches overlap or end, and off only while one is being answered.
That the batch's answers and audit rows are those of each person alone is pinned by
``tests/test_batch_identity_dec07d.py`` (its 1,000-row batches are answered under the hold)."""

import gc
import threading

import pytest

from recommender.service import _collector
from recommender.service._collector import collector_held


@pytest.fixture(autouse=True)
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    assert _collector._holders == 0
    if not was:
        gc.disable()


def test_the_collector_is_off_inside_and_on_again_after():
    with collector_held():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_error_inside_still_turns_it_on_again():
    with pytest.raises(ZeroDivisionError):
        with collector_held():
            raise ZeroDivisionError
    assert gc.isenabled()


def test_a_collector_off_before_stays_off():
    gc.disable()
    with collector_held():
        pass
    assert not gc.isenabled()
    gc.enable()


def test_overlapping_holds_turn_it_on_when_the_last_ends():
    first, second = collector_held(), collector_held()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first to start ends first: the second still holds
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_threads_holding_at_once_leave_it_on():
    inside = threading.Barrier(4)

    def hold():
        with collector_held():
            inside.wait(timeout=10)

    threads = [threading.Thread(target=hold) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert gc.isenabled()


def test_overlapping_holds_still_collect_what_waits_too_long(monkeypatch):
    monkeypatch.setattr(_collector, "_MOST_DEFERRED", 100)
    collected = []
    monkeypatch.setattr(_collector.gc, "collect", lambda generation=2: collected.append(generation))
    outer = collector_held()
    outer.__enter__()
    keep = [[] for _ in range(1000)]  # young containers left waiting
    with collector_held():
        pass
    assert collected == [1]
    outer.__exit__(None, None, None)
    del keep


def test_a_batch_is_answered_with_the_collector_held(monkeypatch):
    from recommender.service import _engine

    seen = []

    def answer(self, rows, caller_role, batch_id, compact):
        seen.append(gc.isenabled())
        return []

    monkeypatch.setattr(_engine.RecommendationEngine, "_recommend", answer)
    engine = object.__new__(_engine.RecommendationEngine)
    engine.recommend([{}] * _engine._HELD_ROWS, caller_role="program")
    engine.recommend([{}], caller_role="program")  # one answer: nothing to gain from it
    assert seen == [False, True]
    assert gc.isenabled()


def test_a_batch_request_is_checked_answered_and_written_with_the_collector_held(monkeypatch):
    from recommender.service._answering import Answering

    seen = []

    def answer(self, request, caller_role):
        seen.append(gc.isenabled())

    monkeypatch.setattr(Answering, "_answer_batch", answer)
    Answering._recommend_batch(object.__new__(Answering), None, "program")
    assert seen == [False]
    assert gc.isenabled()
