"""``recommender batch-score`` (Spark) ranks with the catalog in force, as ``recommender score``
does: each partition is scored by score's own function (``pipelines.score.scored_table``) with
the model met with that catalog (``pipelines.score.model_in_force``), so both write the same
table for the catalog as trained, an arm renamed, an arm dropped and an eligibility rule changed.

Found: batch-score ran the registered pyfunc through ``mlflow.pyfunc.spark_udf``, which ranks
with the model's own catalog, so a dropped arm was still recommended on Spark and a changed rule
ignored (a rename alone was patched afterwards by renaming columns).

The champion is the session's (tests/service_fixtures.py); one small cohort, with a row flagged
for crisis risk, and the process's one local Spark session (tests/spark_fixtures.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from service_fixtures import champion_home, copy_champion  # noqa: F401 - fixtures
from test_catalog_change_dec06b import _coaching_for_residents_only, under  # noqa: F401
from test_renamed_dec07a import _rename_coaching_and_balint
from spark_fixtures import spark  # noqa: F401 - the process's one local Spark session

pytestmark = pytest.mark.slow


def _as_trained(data):
    """The catalog the champion was trained under, unchanged."""


def _coaching_dropped(data):
    """coaching, which the small champion recommends to about half of everyone, withdrawn."""
    data["arms"] = [arm for arm in data["arms"] if arm["id"] != "coaching"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from recommender.cohort import PROFILE_COLUMNS
    from recommender.simulate import load_scenario, simulate_cohort

    frame = simulate_cohort(load_scenario("default"), 60, seed=11, assignment="rct")
    frame = frame[list(PROFILE_COLUMNS)].copy()
    frame["crisis_risk"] = ["yes" if i == 3 else "" for i in range(len(frame))]
    path = tmp_path_factory.mktemp("cohort") / "cohort.csv"
    frame.to_csv(path, index=False)
    return path, frame


@pytest.mark.parametrize(
    "change",
    [_as_trained, _rename_coaching_and_balint, _coaching_dropped, _coaching_for_residents_only],
    ids=["as-trained", "renamed", "dropped", "eligibility"],
)
def test_batch_score_writes_the_table_score_writes(under, spark, cohort, change, tmp_path, capsys):  # noqa: F811
    from recommender.cli import main

    under(change)
    data, frame = cohort
    in_process, on_spark = tmp_path / "in-process.parquet", tmp_path / "spark.parquet"
    # contributions too: the explanation of the arm recommended under this catalog
    told = {}  # each command's note: and warning: lines
    for command, out in (("score", in_process), ("batch-score", on_spark)):
        assert main([command, "--data", str(data), "--out", str(out), "--contributions"]) == 0
        told[command] = capsys.readouterr().out
    said = "".join(told.values())
    # Both say what the table needs said alike (the data learnt from, renamed arms, ...).
    spoken = {
        command: [line for line in out.splitlines() if line.startswith(("note:", "warning:"))]
        for command, out in told.items()
    }
    assert spoken["batch-score"] == spoken["score"]
    # And the same recommendation mix, counted and said by one function: the arms ranked under
    # the catalog in force (batch-score listed a dropped arm with 0; score only the arms given).
    mixes = {
        command: [line for line in out.splitlines() if line.startswith("recommended: ")]
        for command, out in told.items()
    }
    assert mixes["batch-score"] == mixes["score"] and len(mixes["score"]) == 1, said
    (mix,) = mixes["score"]
    assert mix.endswith("(crisis: not scored) 1 (1.7%)"), mix  # row 3 of 60
    assert any("SIMULATED" in line for line in spoken["batch-score"])

    expected, written = pd.read_parquet(in_process), pd.read_parquet(on_spark)
    _assert_same_table(written, expected)
    assert written["recommended"].isna().tolist() == [i == 3 for i in range(len(frame))]
    assert "988" in written["referral"].iloc[3]

    assert any(c.startswith("contrib_") for c in written.columns)
    recommended = set(written["recommended"].dropna())
    if change is _as_trained:
        assert "coaching" in recommended and len(recommended) >= 2, said
    if change is _coaching_dropped:
        assert "coaching" not in recommended and "coaching" not in mix
    if change is _coaching_for_residents_only:
        coached = written["recommended"] == "coaching"
        assert coached.any() and (frame.loc[coached.to_numpy(), "role"] == "resident").all()
    if change is _rename_coaching_and_balint:
        assert "coaching_one_to_one" in recommended and "coaching" not in recommended
        assert "coaching_one_to_one " in mix and "coaching " not in mix


def _assert_same_table(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same columns in the same order, the same text and judgements (missing where the other
    is), figures equal to 1e-9. Only how a missing judgement reads back differs: pandas keeps
    its nullable booleans in the file score writes, Spark's file reads back None."""
    from recommender.model import JUDGEMENT_COLUMNS

    assert list(actual.columns) == list(expected.columns)
    for column in expected.columns:
        mine, theirs = actual[column], expected[column]
        if column in JUDGEMENT_COLUMNS:
            assert mine.astype("boolean").tolist() == theirs.astype("boolean").tolist(), column
        elif pd.api.types.is_float_dtype(theirs.dtype):
            np.testing.assert_allclose(
                mine.to_numpy(float), theirs.to_numpy(float), rtol=0, atol=1e-9
            )
        else:
            assert mine.isna().tolist() == theirs.isna().tolist(), column
            assert mine.dropna().astype(str).tolist() == theirs.dropna().astype(str).tolist()
