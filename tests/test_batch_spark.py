"""Spark batch scoring against a real local Spark and a model trained by the project's pipeline.

One small model is trained and registered in a temporary MLflow store, and the process's one
local[2] Spark session (tests/spark_fixtures.py) is used: starting Spark and its Python
workers is the expensive part, scoring 3,000 rows is not.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from spark_fixtures import spark  # noqa: F401 - the process's one local Spark session

from bench import batch as bench_batch
from pipelines.score import safety_rules
from recommender.errors import InputError
from recommender.model import JUDGEMENT_COLUMNS, OUTSIDE_COLUMN

pytestmark = pytest.mark.slow


N_PROFILES = 3000
# A few estimators and folds (the benchmark's small model): the test is about Spark reproducing
# in-process scoring, not about the model's quality.
SMALL_TRAINING = bench_batch.SMALL_TRAINING


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECOMMENDER_HOME", str(folder))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.setenv("RECOMMENDER_ACTOR", "test-suite")
        yield folder


# The small model is trained once per process and copied into each module's home (pytest makes
# one fixture definition per importing module, so this cache, not the scope, keeps it to one).
_SMALL_MODEL: dict = {}


@pytest.fixture(scope="module")
def trained(home, tmp_path_factory):
    """The small model, registered in this module's home: trained once per process in a folder
    of its own and copied here as trained (a copied home reads its own files)."""
    if "home" not in _SMALL_MODEL:
        from service_fixtures import recommender_home

        from pipelines.train import run_training

        folder = tmp_path_factory.mktemp("batch-small-model")
        with recommender_home(folder):
            _SMALL_MODEL["result"] = run_training(overrides=SMALL_TRAINING, reason="batch test")
        _SMALL_MODEL["home"] = folder
    shutil.copytree(_SMALL_MODEL["home"], home, dirs_exist_ok=True)
    result = _SMALL_MODEL["result"]
    return result, f"models:/burnout-recommender/{result.version}"


@pytest.fixture(scope="module")
def profiles(home):
    from recommender.cohort import PROFILE_COLUMNS
    from recommender.simulate import load_scenario, simulate_cohort

    frame = simulate_cohort(load_scenario("default"), N_PROFILES, seed=21)[list(PROFILE_COLUMNS)]
    for column in frame.columns:  # plain types, as a program's export would have them
        if isinstance(frame[column].dtype, pd.CategoricalDtype) or column == "person_id":
            frame[column] = frame[column].astype(str)
    return frame.reset_index(drop=True)


@pytest.fixture(scope="module")
def cohort_parquet(profiles, tmp_path_factory):
    path = tmp_path_factory.mktemp("cohort") / "cohort.parquet"
    profiles.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def bad_cohort(profiles, tmp_path_factory):
    """A bad category, an out-of-range score and a person_id used twice, far apart."""
    bad = profiles.copy()
    bad.loc[5, "role"] = "surgeon"
    bad.loc[2100, "ee"] = 61
    bad.loc[2500, "person_id"] = bad.loc[7, "person_id"]
    folder = tmp_path_factory.mktemp("bad")
    bad.to_csv(folder / "bad.csv", index=False)
    # Many row groups, so a small split size spreads one file over several partitions and
    # the row numbers must come from the partition offsets.
    bad.to_parquet(folder / "bad.parquet", index=False, row_group_size=250)
    return folder


@pytest.fixture(scope="module")
def spark_scored(trained, spark, cohort_parquet, tmp_path_factory):
    from pipelines.batch import score_with_spark

    _, uri = trained
    out = tmp_path_factory.mktemp("scored") / "scored.parquet"
    summary = score_with_spark(uri, cohort_parquet, out)
    return summary, pd.read_parquet(out)


SAFETY_COLUMNS = ["safety_level", "referral"]


def _assert_same_scores(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    # Spark's table ends with the service's safety columns, which in-process scoring lacks.
    extra = [c for c in actual.columns if c not in expected.columns]
    assert list(actual.columns) == [*expected.columns, *extra]
    assert extra in ([], SAFETY_COLUMNS)
    np.testing.assert_array_equal(
        actual["person_id"].to_numpy(dtype=str), expected["person_id"].to_numpy(dtype=str)
    )
    np.testing.assert_array_equal(
        actual["recommended"].to_numpy(dtype=str), expected["recommended"].to_numpy(dtype=str)
    )
    # what the service's answers say of each ranking: booleans beside the recommendation
    for column in JUDGEMENT_COLUMNS:
        assert actual[column].tolist() == expected[column].tolist()
        assert actual[column].dtype == bool
    # the fields outside the training data: text, empty when inside
    np.testing.assert_array_equal(
        actual[OUTSIDE_COLUMN].fillna("<null>").to_numpy(dtype=str),
        expected[OUTSIDE_COLUMN].fillna("<null>").to_numpy(dtype=str),
    )
    numeric = [
        c
        for c in expected.columns
        if c
        not in ("person_id", "recommended", *JUDGEMENT_COLUMNS, OUTSIDE_COLUMN, *SAFETY_COLUMNS)
    ]
    np.testing.assert_allclose(
        actual[numeric].to_numpy(dtype=float),
        expected[numeric].to_numpy(dtype=float),
        rtol=0,
        atol=1e-9,
    )


def test_spark_scores_equal_in_process_scoring(trained, spark_scored, profiles):
    from recommender.registry import load_pyfunc

    result, uri = trained
    summary, scored = spark_scored
    in_process = result.model.score(profiles).reset_index(drop=True)
    _assert_same_scores(scored, in_process)
    # The pyfunc the service loads gives the same table as well.
    pyfunc = load_pyfunc(uri).predict(profiles, params={"contributions": False})
    _assert_same_scores(scored, pyfunc)
    assert len(in_process["recommended"].unique()) >= 2  # a comparison across several arms


def test_a_model_saved_before_support_was_recorded_gets_an_empty_column(
    trained, spark, profiles, cohort_parquet, tmp_path, monkeypatch
):
    # As older code saved a model: no support in its metadata, no such column in its
    # signature (its score had none).
    import copy

    from pipelines.batch import score_with_spark
    from recommender.model import RecommendationModel
    from recommender.registry._pyfunc import log_pyfunc
    from recommender.registry._store import ensure_experiment, mlflow_session

    result, _ = trained
    older = copy.copy(result.model)
    older.metadata = {k: v for k, v in older.metadata.items() if k != "training_support"}
    score = RecommendationModel.score
    with monkeypatch.context() as patch:
        patch.setattr(
            RecommendationModel,
            "score",
            lambda self, *a, **k: score(self, *a, **k).drop(columns=OUTSIDE_COLUMN),
        )
        # in the project's experiment, whose artifacts stay under this test's home
        with mlflow_session() as mlflow, mlflow.start_run(experiment_id=ensure_experiment()):
            info = log_pyfunc(older, profiles.head(5), safety=safety_rules())
    assert OUTSIDE_COLUMN not in info.signature.outputs.input_names()
    out = tmp_path / "older.parquet"
    summary = score_with_spark(info.model_uri, cohort_parquet, out)
    scored = pd.read_parquet(out)
    assert OUTSIDE_COLUMN in summary.columns and len(scored) == N_PROFILES
    assert scored[OUTSIDE_COLUMN].isna().all()


def test_a_model_saved_before_the_judgements_gets_them_as_score_does(
    trained, spark, profiles, cohort_parquet, tmp_path, monkeypatch
):
    # As older code saved a model: no ranking_meaningful or benefit_established in its
    # signature (its score had neither), no max_overlap among its parameters. batch-score runs
    # the current code on it, as score does (its pyfunc, the code saved with it, gives neither):
    # both judgements, in their place, as in process. (Changed: batch-score ran that pyfunc on
    # Spark and gave them null.)
    from pipelines.batch import score_with_spark
    from recommender.model import RecommendationModel
    from recommender.registry import _pyfunc
    from recommender.registry._store import ensure_experiment, mlflow_session

    result, uri = trained
    score = RecommendationModel.score
    with monkeypatch.context() as patch:
        patch.setattr(
            RecommendationModel,
            "score",
            lambda self, *a, max_overlap=0.5, **k: score(self, *a, **k).drop(
                columns=list(JUDGEMENT_COLUMNS)
            ),
        )
        patch.setattr(_pyfunc, "DEFAULT_PARAMS", {"alpha": 0.1, "contributions": True})
        with mlflow_session() as mlflow, mlflow.start_run(experiment_id=ensure_experiment()):
            info = _pyfunc.log_pyfunc(result.model, profiles.head(5), safety=safety_rules())
    assert not set(JUDGEMENT_COLUMNS) & set(info.signature.outputs.input_names())
    out = tmp_path / "older.parquet"
    summary = score_with_spark(info.model_uri, cohort_parquet, out)
    scored = pd.read_parquet(out)
    assert summary.columns[:4] == ["person_id", "recommended", *JUDGEMENT_COLUMNS]
    assert scored.columns[:4].tolist() == summary.columns[:4]
    assert len(scored) == N_PROFILES
    in_process = result.model.score(profiles).reset_index(drop=True)
    for column in JUDGEMENT_COLUMNS:
        assert scored[column].tolist() == in_process[column].tolist()


def test_the_fields_outside_the_training_data_are_listed(trained, spark_scored, profiles):
    result, _ = trained
    _, scored = spark_scored
    listed = scored[OUTSIDE_COLUMN]
    assert listed.notna().all()  # the model records its support: empty when inside
    support = result.model.metadata["training_support"]
    oldest = support["features"]["age"]["max"]
    # beyond the oldest trained on, or beyond the oldest (youngest) of the person's role
    within = support["within"]["levels"]
    role_age = (
        profiles["role"]
        .astype(str)
        .map(lambda role: within[role]["age"] if role in within else {"min": -1, "max": 999})
    )
    beyond = (profiles["age"] > oldest).to_numpy() | np.array(
        [not (span["min"] <= age <= span["max"]) for age, span in zip(profiles["age"], role_age)]
    )
    assert beyond.any() and not beyond.all()
    assert [("age" in fields.split(";")) for fields in listed] == beyond.tolist()


def test_scored_table_follows_the_data_contract_and_keeps_row_order(
    trained, spark_scored, profiles
):
    result, _ = trained
    summary, scored = spark_scored
    assert scored["person_id"].tolist() == profiles["person_id"].tolist()
    for arm in result.model.treatment_arms:
        for prefix in (
            "effect_",
            "lower_",
            "upper_",
            *(f"{kind}_{o}_" for o in ("dp", "pa") for kind in ("effect", "lower", "upper")),
        ):
            assert f"{prefix}{arm}" in scored.columns
    assert set(scored["recommended"]) <= set(result.model.arms)
    assert summary.rows == N_PROFILES == len(scored)
    assert summary.partitions == 2  # one row group, spread over local[2]'s two cores
    assert summary.version == result.version
    counts = scored["recommended"].value_counts().to_dict()
    assert {arm: n for arm, n in summary.arm_counts.items() if n} == counts
    assert set(summary.arm_counts) == set(result.model.arms)
    assert sum(summary.recommendation_mix.values()) == pytest.approx(1.0)


def test_csv_input_and_more_partitions_give_the_same_table(
    trained, spark, spark_scored, profiles, tmp_path
):
    from pipelines.batch import score_with_spark

    _, uri = trained
    path = tmp_path / "cohort.csv"
    profiles.to_csv(path, index=False)
    batch_setting = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(batch_setting)
    summary = score_with_spark(uri, path, tmp_path / "from_csv.parquet", partitions=3)
    assert summary.partitions == 3
    assert spark.conf.get(batch_setting) == before  # the caller's session is left as it was
    _assert_same_scores(pd.read_parquet(tmp_path / "from_csv.parquet"), spark_scored[1])


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_invalid_cohort_names_row_column_value_and_writes_nothing(
    trained, spark, bad_cohort, tmp_path, kind
):
    from pipelines.batch import score_with_spark

    _, uri = trained
    out = tmp_path / "scored.parquet"
    out.mkdir()
    earlier = ["_SUCCESS", "part-00000-earlier.snappy.parquet"]
    for name in earlier:
        (out / name).write_text("kept")
    previous = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "32k")
    try:
        with pytest.raises(InputError) as caught:
            score_with_spark(uri, bad_cohort / f"bad.{kind}", out)
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", previous)
    message = str(caught.value)
    assert "role" in message and "'surgeon'" in message and "physician" in message
    assert "ee" in message and "61" in message and "0 to 54" in message
    found = {(p.rule, p.column, p.row) for p in caught.value.problems}
    assert found == {
        ("category", "role", 5),
        ("range", "ee", 2100),
        ("duplicate_id", "person_id", 2500),
    }
    duplicate = next(p for p in caught.value.problems if p.rule == "duplicate_id")
    assert "same person_id as row 7" in duplicate.message
    # The earlier table is untouched and no staging folder is left behind.
    assert sorted(p.name for p in out.iterdir()) == earlier
    assert all((out / name).read_text() == "kept" for name in earlier)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.parquet"]


def test_missing_column_and_unknown_file_type_are_input_errors(trained, spark, profiles, tmp_path):
    from pipelines.batch import score_with_spark

    _, uri = trained
    path = tmp_path / "no_ee.parquet"
    profiles.drop(columns=["ee"]).to_parquet(path, index=False)
    with pytest.raises(InputError, match="'ee' is missing"):
        score_with_spark(uri, path, tmp_path / "out.parquet")
    (tmp_path / "cohort.xlsx").write_text("not a cohort")
    with pytest.raises(InputError, match="unknown file type"):
        score_with_spark(uri, tmp_path / "cohort.xlsx", tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_a_failure_while_publishing_leaves_nothing_half_written(
    trained, spark, cohort_parquet, tmp_path, monkeypatch
):
    import pipelines.batch as batch

    _, uri = trained

    def refuse(staging, out_path, **_):
        assert (Path(staging) / "_SUCCESS").exists()  # the table was complete in staging
        raise OSError("disk went away")

    monkeypatch.setattr(batch, "_publish", refuse)
    with pytest.raises(OSError, match="disk went away"):
        batch.score_with_spark(uri, cohort_parquet, tmp_path / "scored.parquet")
    assert list(tmp_path.iterdir()) == []


def test_cli_exit_codes(trained, spark, cohort_parquet, bad_cohort, tmp_path, capsys):
    from recommender.cli import main

    _, uri = trained
    out = tmp_path / "cli.parquet"
    assert (
        main(["batch-score", "--model", uri, "--data", str(cohort_parquet), "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert f"scored {N_PROFILES:,} rows" in printed and "recommended:" in printed
    assert len(pd.read_parquet(out)) == N_PROFILES
    from pipelines._batch_output import _is_spark_output

    assert _is_spark_output(out)  # so a second run may replace it without --overwrite

    assert (
        main(
            [
                "batch-score",
                "--model",
                uri,
                "--data",
                str(bad_cohort / "bad.csv"),
                "--out",
                str(tmp_path / "bad.parquet"),
            ]
        )
        == 2
    )
    error = capsys.readouterr().err
    assert "role" in error and "surgeon" in error
    assert not (tmp_path / "bad.parquet").exists()


def test_crisis_column_gives_safety_columns_and_is_checked(trained, spark, profiles, tmp_path):
    # Issue 9: an optional crisis_risk column; crisis rows get resources and no figures.
    from pipelines.batch import score_with_spark

    _, uri = trained
    flagged = profiles.head(400).copy()
    flagged["crisis_risk"] = "false"
    flagged.loc[[3, 250], "crisis_risk"] = "true"
    flagged.loc[250, "role"] = "physician"
    flagged.loc[[10], ["ee", "dp"]] = [[50, 20]]
    flagged.to_parquet(tmp_path / "flagged.parquet", index=False)
    score_with_spark(uri, tmp_path / "flagged.parquet", tmp_path / "out.parquet", partitions=2)
    scored = pd.read_parquet(tmp_path / "out.parquet")
    assert list(scored.columns[-2:]) == SAFETY_COLUMNS
    assert scored["person_id"].tolist() == flagged["person_id"].tolist()
    crisis = scored.loc[[3, 250]]
    assert (crisis["safety_level"] == "crisis").all() and crisis["recommended"].isna().all()
    assert crisis["referral"].str.contains("988").all()
    assert "Physician Support Line" in crisis.loc[250, "referral"]
    assert scored.loc[10, "safety_level"] == "referral" and scored.loc[10, "recommended"]
    assert scored["recommended"].notna().sum() == 398
    # crisis rows have no judgement either, and the same columns as `recommender score`'s
    for column in JUDGEMENT_COLUMNS:
        assert crisis[column].isna().all() and scored[column].notna().sum() == 398
    from pipelines.score import score_file

    score_file(uri, tmp_path / "flagged.parquet", tmp_path / "in-process.parquet")
    in_process = pd.read_parquet(tmp_path / "in-process.parquet")
    assert in_process.columns.tolist() == scored.columns.tolist()

    def values(column):
        return [None if pd.isna(v) else v for v in column.tolist()]

    for column in ("recommended", *JUDGEMENT_COLUMNS):
        assert values(in_process[column]) == values(scored[column])

    flagged.loc[321, "crisis_risk"] = "perhaps"
    flagged.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(InputError) as caught:
        score_with_spark(uri, tmp_path / "bad.parquet", tmp_path / "bad-out.parquet", partitions=2)
    assert "row 321: 'perhaps'" in str(caught.value)
    assert not (tmp_path / "bad-out.parquet").exists()
    # refused, but the flagged rows and the one whose flag cannot be read get the resources
    listed = pd.read_csv(tmp_path / "bad-out.crisis.csv")
    assert listed["person_id"].tolist() == flagged["person_id"].iloc[[3, 250, 321]].tolist()
    assert (listed["safety_level"] == "crisis").all()
    assert "bad-out.crisis.csv" in str(caught.value)


# ------------------------------------------------------------- no Spark needed for these
def _batch_score(out, *extra):
    from recommender.cli import main

    return main(["batch-score", "--data", "cohort.parquet", "--out", str(out), *extra])


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_an_existing_destination_that_is_not_ours_is_refused_and_left_intact(
    tmp_path, capsys, kind
):
    out = tmp_path / "results"
    if kind == "folder":
        out.mkdir()
        (out / "thesis.docx").write_text("years of work")
        (out / "_SUCCESS").write_text("")
    else:
        out.write_text("years of work")
    assert _batch_score(out) == 2
    error = capsys.readouterr().err
    assert str(out) in error and "part-*.parquet" in error and "--overwrite" in error
    if kind == "folder":
        assert (out / "thesis.docx").read_text() == "years of work"
        assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS", "thesis.docx"]
    else:
        assert out.read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_a_folder_that_appears_while_scoring_is_not_replaced(tmp_path):
    from pipelines.batch import _publish

    staging, out = tmp_path / ".staging", tmp_path / "scored.parquet"
    staging.mkdir()
    (staging / "part-00000.parquet").write_text("new")
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not an earlier Spark output"):
        _publish(staging, out)
    assert (out / "notes.txt").read_text() == "mine"
    # Replaced when it is an earlier scored table, or when asked to.
    for name, overwrite in (("_SUCCESS", False), ("notes.txt", True)):
        (out / "notes.txt").unlink(missing_ok=True)
        (out / name).write_text("old")
        staging.mkdir(exist_ok=True)
        (staging / "part-00000.parquet").write_text("new")
        _publish(staging, out, overwrite=overwrite)
        assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.parquet"]


def test_output_folder_holding_the_cohort_is_refused_even_with_overwrite(tmp_path, capsys):
    out = tmp_path / "data"
    out.mkdir()
    (out / "cohort.parquet").write_text("the input")
    from recommender.cli import main

    argv = ["batch-score", "--data", str(out / "cohort.parquet"), "--out", str(out)]
    assert main([*argv, "--overwrite"]) == 2
    assert "holds the cohort" in capsys.readouterr().err
    assert (out / "cohort.parquet").read_text() == "the input"


def test_without_pyspark_the_cli_says_what_to_install(tmp_path, capsys, monkeypatch):
    import sys

    for name in [m for m in sys.modules if m == "pyspark" or m.startswith("pyspark.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyspark", None)  # `import pyspark` raises ImportError
    assert _batch_score(tmp_path / "scored.parquet") == 2
    error = capsys.readouterr().err
    assert "burnout-recommender[spark]" in error and "Java 17+" in error
    assert "Traceback" not in error
    assert not (tmp_path / "scored.parquet").exists()


def test_without_java_the_cli_says_what_to_install(tmp_path, capsys, monkeypatch):
    import pipelines.batch as batch
    from pyspark.sql import SparkSession

    monkeypatch.setattr(SparkSession, "getActiveSession", classmethod(lambda cls: None))
    monkeypatch.setattr(batch.shutil, "which", lambda name, *a, **k: None)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert _batch_score(tmp_path / "scored.parquet") == 2
    error = capsys.readouterr().err
    assert "Java 17+" in error and "JAVA_HOME" in error


def test_a_cohort_that_is_not_utf8_is_refused_naming_its_line_not_read_with_marks(spark, tmp_path):
    # Spark reads bytes that are not UTF-8 as U+FFFD: a Windows-1252 export's 'pé' and 'pè'
    # both became 'p\ufffd', ids the program could no longer join its table on.
    from pipelines._batch_cohort import read_cohort_spark

    header = "person_id,age,gender,role,specialty,setting,years_in_practice,weekly_hours,ee,dp,pa\n"
    rows = "".join(f"p{c},41,female,nurse,other,rural,3.5,40,20,5,30\n" for c in "aéè")
    path = tmp_path / "export.csv"
    path.write_bytes((header + rows).encode("cp1252"))
    with pytest.raises(InputError, match="line 3 is not UTF-8 text"):
        read_cohort_spark(spark, path)
    path.write_text(header + rows, encoding="utf-8")
    assert read_cohort_spark(spark, path).toPandas()["person_id"].tolist() == ["pa", "pé", "pè"]


# ------------------------------------------ the same file through `score` and `batch-score`
# Each file is scored in process (score_file, as `recommender score`) and on Spark
# (score_with_spark, as `recommender batch-score`): both score it, to equal tables, or both
# refuse it, with the same problems (rule, column, row) and the words said here. Found by
# running such files through both: Spark refused a spreadsheet's empty margins that `score`
# reads, kept the quotes of an id written as RFC 4180 writes a quote, split a quoted field's
# line break into rows, and scored a row with more fields than the header; `score` read an id
# 'NA' as missing and a crisis_risk 'NA' as not flagged, and shifted every column when the
# first row had one field too many.
def _text(frame: pd.DataFrame, **options) -> str:
    return frame.to_csv(index=False, **options)


def _with_margins(text: str, *, end: str = "\n", cell: str = "") -> str:
    """``text`` as a spreadsheet exports a sheet whose cells beyond the table were touched: two
    empty columns with no name ending every line, then lines of empty cells."""
    lines = [line + f",{cell}," for line in text.rstrip("\n").split("\n")]
    width = lines[0].count(",") + 1
    return end.join([*lines, *[",".join([cell] * width)] * 3]) + end


def _lines(text: str, edit) -> str:
    lines = text.split("\n")
    edit(lines)
    return "\n".join(lines)


def _changed(frame: pd.DataFrame, row: int, column: str, value) -> pd.DataFrame:
    frame = frame.astype(object)
    frame.loc[row, column] = value
    return frame


def _write_file(name: str, content):
    def write(frame: pd.DataFrame, folder: Path) -> Path:
        path = folder / name
        data = content(frame)
        if isinstance(data, pd.DataFrame):
            data.to_parquet(path, index=False)
        elif isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8", newline="")
        return path

    return write


def _gzip(text: str) -> bytes:
    import gzip

    return gzip.compress(text.encode(), mtime=0)


# name: (the file, "scored" or words both refusals say)
EDGE_FILES = {
    "bom_and_crlf": (
        _write_file("a.csv", lambda f: b"\xef\xbb\xbf" + _text(f, lineterminator="\r\n").encode()),
        "scored",
    ),
    "every_field_quoted": (_write_file("a.csv", lambda f: _text(f, quoting=1)), "scored"),
    "doubled_quote_in_an_id": (
        _write_file("a.csv", lambda f: _text(_changed(f, 2, "person_id", 'p,"x"'))),
        "scored",
    ),
    "line_break_in_a_quoted_field": (
        _write_file("a.csv", lambda f: _text(f.assign(notes="first line\nsecond line"))),
        "scored",
    ),
    "semicolons": (
        _write_file("a.csv", lambda f: _text(f, sep=";")),
        "is separated by semicolons; accepted: comma-separated (.csv) columns",
    ),
    "header_case_and_spaces": (
        _write_file("a.csv", lambda f: _text(f.rename(columns={"person_id": "Person ID"}))),
        "the table has 'Person ID': rename it 'person_id'",
    ),
    "blank_lines": (
        _write_file(
            "a.csv", lambda f: _lines(_text(f), lambda lines: lines.insert(4, "")) + "\n\n"
        ),
        "scored",
    ),
    "empty_row_inside": (
        _write_file("a.csv", lambda f: _lines(_text(f), lambda lines: lines.insert(4, "," * 10))),
        "missing value",
    ),
    "spreadsheet_margins": (
        _write_file(
            "a.csv", lambda f: b"\xef\xbb\xbf" + _with_margins(_text(f), end="\r\n").encode()
        ),
        "scored",
    ),
    "margins_of_spaces": (
        _write_file("a.csv", lambda f: _with_margins(_text(f), cell=" ")),
        "scored",
    ),
    "margins_compressed": (
        _write_file("a.csv.gz", lambda f: _gzip(_with_margins(_text(f)))),
        "scored",
    ),
    "margins_after_an_empty_row": (
        _write_file(
            "a.csv",
            lambda f: _with_margins(_lines(_text(f), lambda lines: lines.insert(4, "," * 10))),
        ),
        "missing value",
    ),
    "windows_1252": (
        _write_file("a.csv", lambda f: _text(_changed(f, 3, "person_id", "pé")).encode("cp1252")),
        "line 5 is not UTF-8 text (byte 0xe9",
    ),
    "an_id_written_NA": (
        _write_file("a.csv", lambda f: _text(_changed(f, 2, "person_id", "NA"))),
        "scored",
    ),
    "a_crisis_flag_written_NA": (
        _write_file(
            "a.csv", lambda f: _text(_changed(f.assign(crisis_risk="no"), 2, "crisis_risk", "NA"))
        ),
        "(row 2: 'NA')",
    ),
    "first_row_with_a_field_too_many": (
        _write_file(
            "a.csv", lambda f: _lines(_text(f), lambda lines: lines.__setitem__(1, lines[1] + ",x"))
        ),
        "Expected 11 fields in",
    ),
    "later_row_with_a_field_too_many": (
        _write_file(
            "a.csv", lambda f: _lines(_text(f), lambda lines: lines.__setitem__(4, lines[4] + ",x"))
        ),
        "Expected 11 fields in",
    ),
    "a_field_too_many_holding_a_line_break": (
        _write_file(
            "a.csv",
            lambda f: _lines(_text(f), lambda lines: lines.__setitem__(4, lines[4] + ',"x\ny"')),
        ),
        "Expected 11 fields in",
    ),
    "row_with_a_field_too_few": (
        _write_file(
            "a.csv",
            lambda f: _lines(
                _text(f), lambda lines: lines.__setitem__(4, lines[4].rsplit(",", 1)[0])
            ),
        ),
        "missing value",
    ),
    "parquet_with_extra_columns": (
        _write_file("a.parquet", lambda f: f.assign(notes="free text", site=3)),
        "scored",
    ),
    "parquet_with_a_wrong_type": (
        _write_file("a.parquet", lambda f: _changed(f, 2, "ee", "abc").astype({"ee": str})),
        "wrong type",
    ),
    "parquet_with_nulls": (
        _write_file(
            "a.parquet", lambda f: f.astype({"age": float}).assign(role=[None, *f["role"][1:]])
        ),
        "missing value",
    ),
    "duplicate_person_id": (
        _write_file("a.csv", lambda f: _text(_changed(f, 8, "person_id", f.loc[1, "person_id"]))),
        "duplicate person_id",
    ),
    "empty_file": (_write_file("a.csv", lambda f: ""), "the file is empty (no header row"),
    "header_only": (_write_file("a.csv", lambda f: _text(f.iloc[:0])), "the table has no rows"),
}


def _outcome(score, data: Path, out: Path):
    """("scored", table) or ("refused", message, problems as (rule, column, row))."""
    try:
        score(data, out)
    except InputError as error:

        def key(problem):
            if isinstance(problem, dict):
                return problem.get("rule"), problem.get("column"), problem.get("row")
            return problem.rule, problem.column, problem.row

        return "refused", str(error), sorted(map(key, error.problems or []), key=repr)
    return "scored", pd.read_parquet(out)


def _score_both(uri, data: Path, folder: Path):
    from pipelines.batch import score_with_spark
    from pipelines.score import score_file

    return (
        _outcome(lambda d, o: score_file(uri, d, o), data, folder / "in-process.parquet"),
        _outcome(lambda d, o: score_with_spark(uri, d, o), data, folder / "spark.parquet"),
    )


def _assert_agree(in_process, on_spark, expected: str) -> None:
    assert on_spark[0] == in_process[0] == ("scored" if expected == "scored" else "refused"), (
        in_process[:2],
        on_spark[:2],
    )
    if expected == "scored":
        _assert_same_scores(on_spark[1], in_process[1])
        for column in SAFETY_COLUMNS:
            assert on_spark[1][column].tolist() == in_process[1][column].tolist()
        return
    assert expected in in_process[1] and expected in on_spark[1], (in_process[1], on_spark[1])
    assert on_spark[2] == in_process[2]


@pytest.mark.parametrize("case", list(EDGE_FILES))
def test_score_and_batch_score_agree_on_every_file(trained, spark, profiles, tmp_path, case):
    _, uri = trained
    write, expected = EDGE_FILES[case]
    data = write(profiles.head(12).copy(), tmp_path)
    _assert_agree(*_score_both(uri, data, tmp_path), expected)


def _parts(
    frame: pd.DataFrame, folder: Path, *, sep: str = ",", edit=None, second: str = ".csv"
) -> Path:
    """``frame`` as Spark writes a CSV table: part files of 7 and 5 rows (the larger is read
    first; the second's name ends in ``second``), each with the header, beside _SUCCESS and a
    checksum that is not text."""
    folder.mkdir()
    for i, part in enumerate((frame.iloc[:7], frame.iloc[7:])):
        data = (edit or (lambda i, part: part.to_csv(index=False, sep=sep)))(i, part)
        path = folder / f"part-0000{i}-c000{second if i else '.csv'}"
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-00000-c000.csv.crc").write_bytes(b"\xff\xfe\x00")
    return folder


def _cp1252_in_second_part(i, part):
    if i == 0:
        return part.to_csv(index=False)
    return (
        _changed(part.reset_index(drop=True), 1, "person_id", "pé")
        .to_csv(index=False)
        .encode("cp1252")
    )


def _lz4_second_part(i, part):
    # Hadoop's LZ4 block format, which the checks do not read (refused before it is read).
    return part.to_csv(index=False).encode() if i == 0 else b"\x00\x00\x01\x00 lz4 block"


def _other_order_in_second_part(i, part):
    columns = list(part.columns)
    if i == 1:
        columns[8], columns[9] = columns[9], columns[8]  # ee and dp swapped
    return part[columns].to_csv(index=False)


@pytest.mark.parametrize("sep, name", [(",", "cohort.csv"), ("\t", "cohort.tsv")])
def test_a_folder_of_csv_parts_scores_as_the_one_file_they_make(
    trained, spark, profiles, tmp_path, sep, name
):
    # `score` reads one file, and says a folder is one; batch-score reads Spark's layout.
    from pipelines.score import score_file

    _, uri = trained
    cohort = profiles.head(12)
    (tmp_path / "whole.csv").write_text(_text(cohort))
    folder = _parts(cohort, tmp_path / name, sep=sep)
    in_process, on_spark = _score_both(uri, folder, tmp_path)
    assert in_process[0] == "refused" and "is a folder" in in_process[1]
    score_file(uri, tmp_path / "whole.csv", tmp_path / "whole.parquet")
    assert on_spark[0] == "scored", on_spark[1]
    _assert_same_scores(on_spark[1], pd.read_parquet(tmp_path / "whole.parquet"))


@pytest.mark.parametrize(
    "edit, second, said",
    [
        (_cp1252_in_second_part, ".csv", "part-00001-c000.csv: line 3 is not UTF-8 text"),
        (_other_order_in_second_part, ".csv", "part-00001-c000.csv: its header"),
        (_lz4_second_part, ".csv.lz4", "part-00001-c000.csv.lz4: compressed as .lz4"),
    ],
)
def test_a_folder_with_one_bad_part_is_refused_naming_it(
    trained, spark, profiles, tmp_path, edit, second, said
):
    # Found: a Windows-1252 part was read with U+FFFD for 'é' (ids silently changed), and a
    # part whose columns are in another order was read under the first part's names. A codec
    # the UTF-8 check cannot read through is refused rather than read unchecked.
    from pipelines.batch import score_with_spark

    _, uri = trained
    folder = _parts(profiles.head(12), tmp_path / "cohort.csv", edit=edit, second=second)
    with pytest.raises(InputError, match=said.replace(".", r"\.")):
        score_with_spark(uri, folder, tmp_path / "scored.parquet")
    assert not (tmp_path / "scored.parquet").exists()
