"""``recommender batch-score`` meeting bad input: destinations, unreadable files, a Java that
cannot start, Ctrl-C. Each must end in a plain error naming what was wrong, with nothing
half-written and nothing of the user's changed (found by running the CLI).

The Spark tests use the process's one local session (tests/spark_fixtures.py), started in the
main thread as the CLI starts it, and tests/test_batch_spark.py's small model (trained once per
process), home and profiles.
"""

from __future__ import annotations

import os
import signal

import pytest
from spark_fixtures import spark  # noqa: F401 - the process's one local Spark session
from test_batch_spark import home, profiles, trained  # noqa: F401 - module fixtures used below


def _batch_score(data, out, *extra, model="models:/burnout-recommender@champion"):
    from recommender.cli import main

    return main(["batch-score", "--model", model, "--data", str(data), "--out", str(out), *extra])


# ------------------------------------------------------------------------- no Spark needed
def test_an_out_path_below_a_file_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "cohort.parquet").write_text("not read")
    (tmp_path / "results").write_text("a file, not a folder")
    assert _batch_score(tmp_path / "cohort.parquet", tmp_path / "results" / "scored.parquet") == 2
    error = capsys.readouterr().err
    assert "--out" in error and "is a file" in error and "Traceback" not in error
    assert (tmp_path / "results").read_text() == "a file, not a folder"


def test_an_out_path_inside_the_cohort_folder_is_refused(tmp_path, capsys):
    # pandas and pyarrow read a Parquet folder recursively: a scored table written inside it
    # would become part of the cohort for the next reader.
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    (cohort / "part-0.parquet").write_text("the input")
    assert _batch_score(cohort, cohort / "scored.parquet") == 2
    error = capsys.readouterr().err
    assert "holds the cohort" in error or "inside the cohort" in error
    assert sorted(p.name for p in cohort.iterdir()) == ["part-0.parquet"]


def test_a_java_home_without_java_is_named(tmp_path, capsys, monkeypatch):
    # `java` on PATH does not help: Spark starts $JAVA_HOME/bin/java when JAVA_HOME is set.
    from pyspark.sql import SparkSession

    monkeypatch.setattr(SparkSession, "getActiveSession", staticmethod(lambda: None))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))
    (tmp_path / "cohort.parquet").write_text("not read")
    assert _batch_score(tmp_path / "cohort.parquet", tmp_path / "scored.parquet") == 2
    error = capsys.readouterr().err
    assert "JAVA_HOME" in error and str(tmp_path / "no-java") in error
    assert not (tmp_path / "scored.parquet").exists()


def test_py4js_log_of_an_interrupted_call_is_not_printed(caplog):
    import logging

    from pipelines._batch_session import _quiet_interrupted_call

    with _quiet_interrupted_call():
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            logging.exception("KeyboardInterrupt while sending command.")  # as py4j does
        logging.error("any other error")
    assert [r.getMessage() for r in caplog.records] == ["any other error"]


def test_a_spark_error_is_told_in_its_one_line_without_the_jvm_stack():
    from pipelines.batch import spark_error_message

    text = (
        "An error occurred while calling o78.collectToPython.\n"
        ": org.apache.spark.SparkException: [FAILED_READ_FILE.PARQUET_COLUMN_DATA_TYPE_MISMATCH]"
        " Encountered error while reading file file:///d/b.parquet. Data type mismatches when "
        "reading Parquet column [ee]. Expected Spark type bigint, actual Parquet type BINARY. "
        "SQLSTATE: KD001\n"
        "\tat org.apache.spark.sql.errors.QueryExecutionErrors$.failedToReadDataFileError(x)\n"
        "Caused by: org.apache.spark.sql.execution.QueryExecutionException: Parquet column\n"
    )
    message = spark_error_message(RuntimeError(text))
    assert "column [ee]" in message and "b.parquet" in message
    assert "\tat " not in message and "o78" not in message
    worker = (
        "An error occurred while calling o9.parquet.\n: org.apache.spark.SparkException: Job "
        "aborted.\norg.apache.spark.api.python.PythonException: Traceback (most recent call "
        'last):\n  File "x.py", line 1, in f\nValueError: the model refused row 3\n'
        "\tat org.apache.spark.api.python.BasePythonRunner(x)\n"
    )
    assert spark_error_message(RuntimeError(worker)) == "ValueError: the model refused row 3"


# ------------------------------------------------------------------------ with real Spark
@pytest.mark.slow
def test_a_session_started_here_keeps_pythons_ctrl_c_handler(spark):
    # PySpark's own handler calls the JVM from inside the JVM call it interrupts: its cancel
    # fails and Ctrl-C printed three tracebacks before "interrupted".
    import subprocess
    import sys

    from spark_fixtures import how_started

    fresh, before, after = how_started()
    if fresh:  # the process's session was started by spark_fixtures, in this main thread
        assert after is before
        return
    # Another module's in-process batch-score started it: start one in a process of its own.
    check = (
        "import signal\n"
        "from pipelines.batch import spark_session\n"
        "before = signal.getsignal(signal.SIGINT)\n"
        "session = spark_session('local[1]')\n"
        "after = signal.getsignal(signal.SIGINT)\n"
        "session.stop()\n"
        "assert after is before, (before, after)\n"
    )
    ran = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr[-2000:]


@pytest.fixture(scope="module")
def model(trained):
    """tests/test_batch_spark.py's small model, registered in this module's home."""
    return trained[1]


@pytest.mark.slow
def test_unreadable_parquet_is_one_plain_line(spark, model, tmp_path, capsys):
    (tmp_path / "cohort.parquet").write_text("hello, not parquet")
    assert _batch_score(tmp_path / "cohort.parquet", tmp_path / "out.parquet", model=model) == 2
    error = capsys.readouterr().err
    assert "cohort.parquet" in error and "footer" in error.lower()
    assert "\tat org.apache" not in error and len(error.splitlines()) <= 3


@pytest.mark.slow
def test_parquet_parts_that_disagree_on_a_type_name_the_column(
    spark, model, profiles, tmp_path, capsys
):
    folder = tmp_path / "cohort"
    folder.mkdir()
    profiles.iloc[:100].to_parquet(folder / "a.parquet", index=False)
    other = profiles.iloc[100:200].copy()
    other["ee"] = other["ee"].astype(str)
    other.to_parquet(folder / "b.parquet", index=False)
    out = tmp_path / "out.parquet"
    assert _batch_score(folder, out, model=model) in (1, 2)
    error = capsys.readouterr().err
    assert "[ee]" in error and "b.parquet" in error and "collectToPython" not in error
    assert "\tat org.apache" not in error
    assert not out.exists()


@pytest.mark.slow
def test_a_csv_header_is_read_as_written(spark, model, profiles, tmp_path, capsys):
    # Found: Spark renamed a second 'ee' to 'ee11' ("'ee' is missing"), and a file split by
    # semicolons got eleven missing columns where `recommender score` names the separator.
    text = profiles.head(50).to_csv(index=False)
    header, body = text.split("\n", 1)
    (tmp_path / "twice.csv").write_text(header.replace(",dp,", ",ee,") + "\n" + body)
    (tmp_path / "semicolons.csv").write_text(profiles.head(50).to_csv(index=False, sep=";"))
    assert _batch_score(tmp_path / "twice.csv", tmp_path / "a.parquet", model=model) == 2
    error = capsys.readouterr().err
    assert "'ee' appears 2 times" in error and "ee11" not in error
    assert _batch_score(tmp_path / "semicolons.csv", tmp_path / "b.parquet", model=model) == 2
    assert "separated by semicolons" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["semicolons.csv", "twice.csv"]


@pytest.mark.slow
def test_an_extra_column_with_a_dot_in_its_name_is_ignored(spark, model, profiles, tmp_path):
    # Found: a column the contract ignores ('notes.text') failed the whole job, Spark reading
    # its name as a field of a struct `notes`; `recommender score` ignores it with a note.
    from pipelines.batch import score_with_spark

    cohort = profiles.head(50).assign(**{"notes.text": "free text"})
    cohort.to_csv(tmp_path / "cohort.csv", index=False)
    summary = score_with_spark(model, tmp_path / "cohort.csv", tmp_path / "scored.parquet")
    assert summary.rows == 50


@pytest.mark.slow
def test_crisis_rows_are_named_in_the_recommendation_mix(spark, model, profiles, tmp_path, capsys):
    # Found: the summary line said "None 1 (0.3%)" where `recommender score` says
    # "(crisis: not scored)".
    cohort = profiles.head(50).assign(crisis_risk="false")
    cohort.loc[3, "crisis_risk"] = "true"
    cohort.to_csv(tmp_path / "cohort.csv", index=False)
    assert _batch_score(tmp_path / "cohort.csv", tmp_path / "scored.parquet", model=model) == 0
    (mix,) = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith("recommended:")
    ]
    assert "(crisis: not scored) 1 (2.0%)" in mix and "None" not in mix


def _big_cohort_and_earlier_table(profiles, folder):
    """30,000 rows (long enough to be caught writing) and an earlier scored table at the
    destination, which an interrupted run must leave as it was."""
    import pandas as pd

    cohort = pd.concat([profiles] * 10, ignore_index=True)
    cohort["person_id"] = [f"p{i}" for i in range(len(cohort))]
    folder.mkdir()
    cohort.to_parquet(folder / "cohort.parquet", index=False)
    out = folder / "scored.parquet"
    out.mkdir()
    profiles.head(5).to_parquet(out / "part-00000-earlier.snappy.parquet", index=False)
    (out / "_SUCCESS").touch()
    return folder / "cohort.parquet", out, {path.name: path.read_bytes() for path in out.iterdir()}


@pytest.mark.slow
def test_an_interrupted_write_stops_its_job_before_removing_the_staging_folder(
    spark, model, profiles, tmp_path
):
    # Found: the signal landed inside py4j's call running the write, so the job could not be
    # cancelled; it went on after batch-score had removed the staging folder and said
    # "terminated", and its tasks (or the JVM's exit) re-created .scored.parquet.writing-*.
    import threading
    import time

    from pyspark import SparkContext

    work = tmp_path / "work"
    cohort, out, earlier = _big_cohort_and_earlier_table(profiles, work)
    done = threading.Event()

    def terminate_once_tasks_write():
        while not done.is_set():
            if list(work.glob(".scored.parquet.writing-*/_temporary/*/_temporary/*")):
                os.kill(os.getpid(), signal.SIGTERM)  # the CLI turns it into an interrupt
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=terminate_once_tasks_write)
    watcher.start()
    try:
        rc = _batch_score(cohort, out, "--partitions", "12", model=model)
    finally:
        done.set()
        watcher.join()
    assert rc == 128 + signal.SIGTERM
    # Nothing is left running that could write below the staging folder again.
    assert SparkContext._active_spark_context.statusTracker().getActiveJobsIds() == []
    assert sorted(path.name for path in work.iterdir()) == ["cohort.parquet", "scored.parquet"]
    assert {path.name: path.read_bytes() for path in out.iterdir()} == earlier


def _until_gone(session: int) -> None:
    """Wait until no process of ``session`` (the CLI and the JVM it started) is left."""
    import time

    for _ in range(12000):  # a guard against hanging the suite, not a criterion
        try:
            os.killpg(session, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.killpg(session, signal.SIGKILL)
    pytest.fail("the interrupted batch-score or its JVM did not end")


@pytest.mark.slow
def test_ctrl_c_while_writing_leaves_no_staging_and_the_earlier_table(model, profiles, tmp_path):
    # The same through a real `recommender batch-score` process and its own JVM, Ctrl-C as
    # from a terminal as soon as Spark creates the staging folder; then every process of its
    # session (the JVM's exit included) has ended before anything is looked at.
    import subprocess
    import sys
    import time

    work = tmp_path / "work"
    cohort, out, earlier = _big_cohort_and_earlier_table(profiles, work)
    command = [sys.executable, "-m", "recommender", "batch-score", "--model", model]
    command += ["--data", str(cohort), "--out", str(out)]
    log = tmp_path / "stderr.txt"
    with log.open("w") as sink:
        process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            start_new_session=True,  # its JVM too, to wait for below
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal's
        )
    try:
        while not list(work.glob(".scored.parquet.writing-*")):
            assert process.poll() is None, log.read_text()[-2000:]
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGINT)
        process.wait()
        _until_gone(process.pid)
    finally:
        if process.poll() is None:
            process.kill()
    err = log.read_text()
    assert process.returncode == 128 + signal.SIGINT, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted (SIGINT): recommender batch-score stopped; "), last
    assert sorted(path.name for path in work.iterdir()) == ["cohort.parquet", "scored.parquet"]
    assert {path.name: path.read_bytes() for path in out.iterdir()} == earlier


@pytest.mark.slow
def test_a_cohort_that_cannot_be_scored_still_gives_its_crisis_rows_their_resources(
    spark, model, profiles, tmp_path, capsys
):
    # As `score` and `allocate`: a row failing the contract, or a model that cannot be found,
    # refused the whole file and the people flagged for crisis risk in it got nothing.
    import pandas as pd

    cohort = profiles.head(50).assign(crisis_risk="")
    cohort.loc[[3, 7], "crisis_risk"] = ["true", "YES"]
    cohort.loc[7, "role"] = "physician"
    good = tmp_path / "good.csv"
    cohort.to_csv(good, index=False)
    cohort.loc[10, "age"] = 3
    cohort.to_csv(tmp_path / "bad.csv", index=False)
    out = tmp_path / "scored.parquet"
    crisis_file = tmp_path / "scored.crisis.csv"
    for data, model_ref, said in (
        (tmp_path / "bad.csv", model, "age"),
        (good, "models:/burnout-recommender/99", "no registered model version matches"),
    ):
        assert _batch_score(data, out, model=model_ref) == 2
        error = capsys.readouterr().err
        assert said in error and f"they are in {crisis_file}" in error and not out.exists()
        rows = pd.read_csv(crisis_file)
        assert rows["person_id"].tolist() == cohort["person_id"].iloc[[3, 7]].tolist()
        assert (rows["safety_level"] == "crisis").all() and rows["referral"].str.contains(
            "988"
        ).all()
        assert "Physician Support Line" in rows["referral"].iloc[1]
        crisis_file.unlink()
    crisis_file.write_text("an earlier failed run's")
    assert _batch_score(good, out, model=model) == 0  # scored: the crisis rows are in the table
    assert out.exists() and not crisis_file.exists()
