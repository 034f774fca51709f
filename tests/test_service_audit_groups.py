"""Audit records written in groups: every answer's record committed before it returns, each
request's records all or none, one request's failure never another's."""

import threading

import pytest
import sqlalchemy as sa

from recommender.service import AuditLog


def _record(request_id, person="p-1"):
    return {
        "request_id": request_id,
        "model_version": "1",
        "caller_role": "program",
        "person_id": person,
        "safety_level": "routine",
        "recommended": "coaching",
        "ranking_meaningful": True,
        "effects": {"coaching": [-4.0, -6.0, -2.0]},
    }


def test_concurrent_requests_are_all_committed_before_they_return(tmp_path):
    log = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", salt="s")
    seen_after_return = []
    start = threading.Barrier(16)

    def request(k):
        start.wait()
        for i in range(25):
            log.append([_record(f"r-{k}-{i}")])
            # durable when append returns: a separate connection sees the row
            reader = sa.create_engine(f"sqlite:///{tmp_path / 'audit.db'}")
            with reader.connect() as connection:
                seen_after_return.append(
                    connection.execute(
                        sa.text("select count(*) from recommendations where request_id = :r"),
                        {"r": f"r-{k}-{i}"},
                    ).scalar_one()
                )
            reader.dispose()

    threads = [threading.Thread(target=request, args=(k,)) for k in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.count() == 16 * 25
    assert seen_after_return == [1] * (16 * 25)
    log.close()


def test_a_failing_request_in_a_group_fails_alone(tmp_path):
    log = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", salt="s")
    log.append([_record("taken")])
    outcomes = {}
    start = threading.Barrier(12)

    def request(k):
        start.wait()
        # every third request repeats an id already stored, with a fresh one beside it
        records = (
            [_record("taken"), _record(f"fresh-{k}")]
            if k % 3 == 0
            else [_record(f"ok-{k}-a"), _record(f"ok-{k}-b")]
        )
        try:
            log.append(records)
            outcomes[k] = "written"
        except sa.exc.IntegrityError:
            outcomes[k] = "refused"

    threads = [threading.Thread(target=request, args=(k,)) for k in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {k for k, v in outcomes.items() if v == "refused"} == {0, 3, 6, 9}
    ids = {row["request_id"] for row in log.export()}
    assert not any(i.startswith("fresh-") for i in ids)  # a refused request wrote nothing
    assert {f"ok-{k}-{s}" for k in range(12) if k % 3 for s in "ab"} <= ids
    assert log.count() == 1 + 8 * 2
    log.close()


def test_a_store_that_cannot_be_written_raises_to_the_waiting_request(tmp_path):
    log = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", salt="s")
    with log._engine.begin() as connection:
        connection.execute(sa.text("drop table recommendations"))
    with pytest.raises(sa.exc.OperationalError):
        log.append([_record("r1")])
    log.close()
