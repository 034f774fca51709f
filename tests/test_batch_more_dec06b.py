"""``recommender batch-score``: the crisis-flagged people's resources when the run is stopped
(Ctrl-C, ``kill``), and CSV part files compressed as Spark writes them (.bz2, .zst).

The process's one local Spark session (tests/spark_fixtures.py); no model is trained:
the stops are made while the model is looked up or while a Spark job runs in its place, and
the compressed files are read and checked without scoring.
"""

from __future__ import annotations

import bz2
import os
import signal
from types import SimpleNamespace

import pandas as pd
import pytest
from spark_fixtures import spark  # noqa: F401 - the process's one local Spark session
from test_batch_spark import home  # noqa: F401 - the module's RECOMMENDER_HOME

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("home")]


def _cohort(path, flags=("true", "false", "false")):
    """Three people, the first flagged for crisis risk: all a crisis answer reads is there."""
    frame = pd.DataFrame(
        {
            "person_id": [f"p{i + 1}" for i in range(len(flags))],
            "role": ["nurse", "physician", "nurse"][: len(flags)],
            "crisis_risk": list(flags),
        }
    )
    frame.to_csv(path, index=False)
    return path


def _batch_score(data, out):
    from recommender.cli import main

    return main(["batch-score", "--model", "models:/nothing@champion", "--data", str(data),
                 "--out", str(out)])  # fmt: skip


# --------------------------------------------------------------------- stopped midway
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_stopped_while_the_model_loads_the_flagged_people_get_their_resources(
    spark, tmp_path, monkeypatch, capsys, signum
):
    # Found: Ctrl-C or kill during batch-score wrote nothing for the people flagged in the
    # file, where score and allocate write <out>.crisis.csv and say so in their one line.
    import time

    import recommender.registry

    def stopped(*args, **kwargs):
        os.kill(os.getpid(), signum)  # as from a terminal, or `kill`
        for _ in range(600):  # until the handler raises; a guard, not a criterion
            time.sleep(0.1)
        raise AssertionError("the signal never arrived")

    monkeypatch.setattr(recommender.registry, "resolve_model", stopped)
    data, out = _cohort(tmp_path / "cohort.csv"), tmp_path / "scored.parquet"
    assert _batch_score(data, out) == 128 + signum
    err = capsys.readouterr().err
    word = {signal.SIGINT: "interrupted (SIGINT)", signal.SIGTERM: "terminated (SIGTERM)"}[signum]
    assert err.count("\n") == 1 and err.startswith(f"{word}: recommender batch-score stopped; ")
    crisis = tmp_path / "scored.crisis.csv"
    assert f"the 1 profile(s) flagged for crisis risk need the crisis resources now: they " \
        f"are in {crisis}" in err  # fmt: skip
    rows = pd.read_csv(crisis)
    assert rows["person_id"].tolist() == ["p1"] and rows["referral"].str.contains("988").all()
    assert not out.exists()


def test_stopped_during_a_spark_job_cancels_it_and_still_writes_them(
    spark, tmp_path, monkeypatch, capsys
):
    # The signal lands inside a Spark action of the main thread (validation's, here one that
    # holds both cores): that job is cancelled, and the flagged rows are looked up after it.
    import threading
    import time

    import pipelines.batch
    import pipelines.score

    class Loaded:  # a model met with the catalog in force, as far as validation reads it
        served = SimpleNamespace(extra_features=())

    def slow_validation(cohort, *, extra_features):
        def hold(batches):
            for batch in batches:
                for _ in range(600):  # a minute, unless cancelled
                    time.sleep(0.1)
                yield batch

        return spark.range(0, 2, numPartitions=2).mapInPandas(hold, "id long").collect()

    tracker = spark.sparkContext.statusTracker()
    done, held = threading.Event(), []

    def interrupt_once_running():
        while not done.is_set():
            jobs = [tracker.getJobInfo(job) for job in tracker.getActiveJobsIds()]
            stages = [tracker.getStageInfo(s) for job in jobs if job for s in job.stageIds]
            if sum(stage.numActiveTasks for stage in stages if stage) == 2:
                held.extend(job.jobId for job in jobs if job)
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    monkeypatch.setattr(pipelines.score, "model_in_force", lambda *a, **k: Loaded())
    monkeypatch.setattr(pipelines.batch, "validate_cohort_spark", slow_validation)
    data = _cohort(tmp_path / "cohort.csv", flags=("false", "1", "maybe"))
    watcher = threading.Thread(target=interrupt_once_running)
    watcher.start()
    try:
        assert _batch_score(data, tmp_path / "scored.parquet") == 130
    finally:
        done.set()
        watcher.join()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "they are in" in err, err
    # a flag that cannot be read counts as set, as when the run fails
    assert pd.read_csv(tmp_path / "scored.crisis.csv")["person_id"].tolist() == ["p2", "p3"]
    # cancelled, not waited out (left running, it would have succeeded after its minute)
    assert held and [tracker.getJobInfo(job).status for job in held] == ["FAILED"] * len(held)
    assert tracker.getActiveJobsIds() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort.csv", "scored.crisis.csv"]


def test_a_py4j_failure_raised_while_handling_the_stop_is_still_the_stop(
    spark, tmp_path, monkeypatch, capsys
):
    # Found in a full run: stopped inside a JVM call of the main thread, py4j drops its
    # connection and PySpark's clean-up (SCCallSiteSync) calls the JVM on a new one, which
    # failed ("Answer from Java side is empty"): exit 1, "the Spark job failed", and the flagged
    # people got nothing. Made certain here: the clean-up's failure is raised by hand.
    import pipelines.batch
    import pipelines.score
    from py4j.protocol import Py4JNetworkError

    class Loaded:  # a model met with the catalog in force, as far as validation reads it
        served = SimpleNamespace(extra_features=())

    def validation_stopped_then_failing(cohort, *, extra_features):
        try:
            raise KeyboardInterrupt
        finally:
            raise Py4JNetworkError("Answer from Java side is empty")

    monkeypatch.setattr(pipelines.score, "model_in_force", lambda *a, **k: Loaded())
    monkeypatch.setattr(pipelines.batch, "validate_cohort_spark", validation_stopped_then_failing)
    data = _cohort(tmp_path / "cohort.csv", flags=("false", "1", "maybe"))
    assert _batch_score(data, tmp_path / "scored.parquet") == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted (SIGINT)") and "they are in" in err, err
    assert pd.read_csv(tmp_path / "scored.crisis.csv")["person_id"].tolist() == ["p2", "p3"]


def test_a_spark_failure_without_a_stop_is_still_a_failure(spark, tmp_path, monkeypatch, capsys):
    # ... and the same failure with no interrupt behind it stays what it is.
    import pipelines.batch
    import pipelines.score
    from py4j.protocol import Py4JNetworkError

    class Loaded:  # a model met with the catalog in force, as far as validation reads it
        served = SimpleNamespace(extra_features=())

    def failing(cohort, *, extra_features):
        try:
            raise ValueError("not an interrupt")
        finally:
            raise Py4JNetworkError("Answer from Java side is empty")

    monkeypatch.setattr(pipelines.score, "model_in_force", lambda *a, **k: Loaded())
    monkeypatch.setattr(pipelines.batch, "validate_cohort_spark", failing)
    data = _cohort(tmp_path / "cohort.csv")
    assert _batch_score(data, tmp_path / "scored.parquet") == 1
    assert "the Spark job failed" in capsys.readouterr().err


def test_stopped_again_while_the_flagged_rows_are_looked_up_says_they_were_not_written(
    spark, tmp_path, monkeypatch, capsys
):
    import pipelines._batch_crisis
    import recommender.registry

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(recommender.registry, "resolve_model", stopped)
    monkeypatch.setattr(pipelines._batch_crisis, "flagged_rows", stopped)
    assert _batch_score(_cohort(tmp_path / "cohort.csv"), tmp_path / "scored.parquet") == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stopped again while looking up the rows flagged" in err
    assert "were not written: run it again" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort.csv"]


# ---------------------------------------------------------------- compressed CSV parts
def _zst(data: bytes) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return sink.getvalue().to_pybytes()


_COMPRESS = {".bz2": bz2.compress, ".zst": _zst}

_TEXT = (
    "person_id,role,note\n"
    + "".join(f"p{i},nurse,plain\n" for i in range(2000))
    + 'pé,physician,"two\nlines"\n'
)


@pytest.mark.parametrize("codec", [".bz2", ".zst"])
def test_compressed_parts_are_checked_and_read_as_the_plain_file(spark, tmp_path, codec):
    # Found: a folder of .bz2 or .zst part files (what Spark writes with a codec) was refused,
    # the UTF-8 and quoted-line-break checks reading only plain and .gz files. They read them
    # now, and Spark reads them here (a .zst needs Hadoop's codec: it is there).
    from pipelines.batch import read_cohort_spark

    (tmp_path / "plain.csv").write_text(_TEXT, encoding="utf-8")
    folder = tmp_path / "cohort.csv"
    folder.mkdir()
    header = _TEXT.split("\n", 1)[0]
    (folder / f"part-00000{codec}").write_bytes(_COMPRESS[codec](_TEXT.encode()))
    (folder / f"part-00001{codec}").write_bytes(
        _COMPRESS[codec](f"{header}\np9999,nurse,x\n".encode())
    )
    (folder / "_SUCCESS").touch()
    one = tmp_path / f"one.csv{codec}"
    one.write_bytes(_COMPRESS[codec](_TEXT.encode()))
    expected = read_cohort_spark(spark, tmp_path / "plain.csv").toPandas()
    assert expected["note"].iloc[-1] == "two\nlines" and len(expected) == 2001
    pd.testing.assert_frame_equal(read_cohort_spark(spark, one).toPandas(), expected)
    both = read_cohort_spark(spark, folder).toPandas()
    assert sorted(both["person_id"]) == sorted([*expected["person_id"], "p9999"])
    assert both.set_index("person_id").loc["pé", "note"] == "two\nlines"


@pytest.mark.parametrize("codec", [".bz2", ".zst"])
def test_a_compressed_part_that_is_not_utf8_is_refused_naming_its_line(spark, tmp_path, codec):
    from pipelines.batch import read_cohort_spark
    from recommender.errors import InputError

    folder = tmp_path / "cohort.csv"
    folder.mkdir()
    (folder / "part-00000.csv").write_text("person_id,role\np1,nurse\n")
    latin = "person_id,role\np2,nurse\npé,nurse\n".encode("cp1252")
    (folder / f"part-00001.csv{codec}").write_bytes(_COMPRESS[codec](latin))
    with pytest.raises(InputError, match=rf"part-00001\.csv\{codec}: line 3 is not UTF-8 text"):
        read_cohort_spark(spark, folder)


def test_a_codec_that_cannot_be_checked_is_refused_naming_those_that_can(spark, tmp_path):
    # Hadoop's .lz4 and .snappy are its own block formats (Spark here could not read an LZ4
    # frame file either): refused before anything is read, saying what is accepted.
    from pipelines.batch import read_cohort_spark
    from recommender.errors import InputError

    folder = tmp_path / "cohort.csv"
    folder.mkdir()
    (folder / "part-00000.csv.lz4").write_bytes(b"\x04\x22\x4d\x18 not read")
    with pytest.raises(InputError) as refused:
        read_cohort_spark(spark, folder)
    said = str(refused.value)
    assert "part-00000.csv.lz4: compressed as .lz4, which cannot be checked" in said
    assert "accepted: part files uncompressed or compressed as .gz, .bz2 or .zst" in said
    (tmp_path / "one.csv.lz4").write_bytes(b"not read")
    with pytest.raises(InputError, match=r"unknown file type.*compressed as \.gz, \.bz2 or \.zst"):
        read_cohort_spark(spark, tmp_path / "one.csv.lz4")


def test_the_checks_read_a_compressed_file_in_pieces(tmp_path):
    # Three 1 MiB pieces and more, an é cut by a piece's end each time: read through, in pieces.
    from recommender.cohort import not_utf8, open_decompressed

    text = ("x" * ((1 << 20) - 1) + "é\n") * 3
    for codec, compress in _COMPRESS.items():
        path = tmp_path / f"pieces.csv{codec}"
        path.write_bytes(compress(text.encode()))
        assert not_utf8(path) is None
        with open_decompressed(path) as handle:
            assert len(handle.read(1 << 20)) == 1 << 20
        path.write_bytes(compress(text.encode() + b"\xe9\n"))
        assert not_utf8(path).startswith("line 4 is not UTF-8 text (byte 0xe9")
