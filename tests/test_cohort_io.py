"""Reading, typed loading and the feature frame: nothing is coerced silently."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.catalog import load_catalog
from recommender.cohort import (
    CATEGORIES,
    FEATURE_COLUMNS,
    feature_frame,
    load_cohort,
    read_cohort,
    validate_cohort,
    write_cohort,
)
from recommender.errors import InputError
from test_cohort_helpers import ARMS, clean_cohort


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".csv.gz", ".tsv"])
def test_written_cohort_reads_back_clean(tmp_path, suffix):
    path = write_cohort(clean_cohort(), tmp_path / f"cohort{suffix}")
    frame = read_cohort(path)
    assert len(frame) == 240
    assert validate_cohort(frame, training=True, arms=ARMS).ok


def test_parquet_is_written_with_text_columns_as_text_and_still_dictionary_encoded(tmp_path):
    # Found: category columns came back from pd.read_parquet as 'category', which MLflow's
    # schema enforcement refuses for the registered model's string columns.
    import pandas as pd
    import pyarrow.parquet as pq

    frame = clean_cohort()
    for name, categories in CATEGORIES.items():
        frame[name] = pd.Categorical(frame[name], categories=categories)
    frame["intervention"] = pd.Categorical(frame["intervention"], categories=ARMS)
    frame["site"] = pd.Categorical([None, *[7] * (len(frame) - 1)])
    path = write_cohort(frame, tmp_path / "cohort.parquet")
    back = pd.read_parquet(path)
    assert not [c for c in back.columns if isinstance(back[c].dtype, pd.CategoricalDtype)]
    assert back["gender"].tolist() == frame["gender"].astype(str).tolist()
    assert back["site"].isna().sum() == 1 and back["site"].dropna().eq(7).all()
    column = pq.ParquetFile(path).schema_arrow.get_field_index("role")
    encodings = pq.ParquetFile(path).metadata.row_group(0).column(column).encodings
    assert "RLE_DICTIONARY" in encodings
    assert isinstance(frame["gender"].dtype, pd.CategoricalDtype)  # the caller's frame unchanged


def test_csv_is_read_as_text_so_bad_cells_are_reported_not_coerced(tmp_path):
    frame = clean_cohort().astype(object)
    frame.loc[3, "age"] = "abc"
    frame.loc[4, "person_id"] = "007"
    path = write_cohort(frame, tmp_path / "cohort.csv")
    table = read_cohort(path)
    assert table.loc[4, "person_id"] == "007"  # leading zeros survive
    report = validate_cohort(table)
    assert [(p.row, p.column, p.rule, p.value) for p in report.errors] == [
        (3, "age", "type", "abc")
    ]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_a_column_named_twice_in_a_csv_header_is_reported_not_renamed(tmp_path, suffix):
    # Found: pandas read the second 'ee' as 'ee.1', so validation never saw the duplicate and
    # `recommender score` scored the first copy, whichever of the two was meant.
    frame = clean_cohort()
    frame.insert(len(frame.columns), "ee_again", frame["ee"] + 1)
    path = write_cohort(frame, tmp_path / f"cohort{suffix}")
    text = path.read_bytes()
    if suffix == ".csv":
        path.write_bytes(text.replace(b",ee_again", b",ee", 1))
    else:
        import gzip

        path.write_bytes(gzip.compress(gzip.decompress(text).replace(b",ee_again", b",ee", 1)))
    table = read_cohort(path)
    assert list(table.columns).count("ee") == 2
    report = validate_cohort(table)
    assert [(p.column, p.rule) for p in report.errors] == [("ee", "duplicate_column")]


def test_parquet_with_text_in_a_numeric_column_is_reported(tmp_path):
    frame = clean_cohort().astype({"ee": object})
    frame.loc[8, "ee"] = "high"
    frame["ee"] = frame["ee"].astype(str)
    path = write_cohort(frame, tmp_path / "cohort.parquet")
    report = validate_cohort(read_cohort(path))
    assert [(p.row, p.column, p.rule, p.value) for p in report.errors] == [
        (8, "ee", "type", "high")
    ]


def test_load_cohort_types_columns_by_the_contract(tmp_path):
    path = write_cohort(clean_cohort(), tmp_path / "cohort.csv")
    frame = load_cohort(path, training=True, catalog=load_catalog())
    for name, categories in CATEGORIES.items():
        assert tuple(frame[name].cat.categories) == categories
    assert tuple(frame["intervention"].cat.categories) == ARMS
    for name in ("age", "ee", "dp", "pa", "ee_followup", "dp_followup", "pa_followup"):
        assert frame[name].dtype == np.int64
    for name in ("years_in_practice", "weekly_hours", "propensity", "true_effect_coaching"):
        assert frame[name].dtype == np.float64
    assert frame.loc[0, "person_id"] == "p0000"


def test_load_cohort_raises_with_every_problem(tmp_path):
    frame = clean_cohort()
    frame.loc[1, "ee"] = 80
    frame.loc[2, "intervention"] = "yoga"
    path = write_cohort(frame, tmp_path / "cohort.parquet")
    with pytest.raises(InputError) as caught:
        load_cohort(path, training=True, catalog=load_catalog())
    assert {(p.column, p.rule) for p in caught.value.problems} == {
        ("ee", "range"),
        ("intervention", "unknown_arm"),
    }
    assert str(path) in str(caught.value)


def test_unknown_suffix_and_missing_file_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="unknown file type"):
        read_cohort(tmp_path / "cohort.xlsx")
    with pytest.raises(InputError, match="no such file"):
        read_cohort(tmp_path / "absent.csv")
    (tmp_path / "broken.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="cannot be read"):
        read_cohort(tmp_path / "broken.parquet")


def test_feature_frame_order_types_and_no_person_id():
    frame = clean_cohort()
    frame.index = frame.index + 100
    features = feature_frame(frame)
    assert tuple(features.columns) == FEATURE_COLUMNS
    assert "person_id" not in features
    assert features.index.equals(frame.index)
    for name, categories in CATEGORIES.items():
        assert tuple(features[name].cat.categories) == categories


def test_feature_frame_codes_are_stable_whatever_the_batch_contains():
    frame = clean_cohort()
    nurses = frame[frame["role"] == "nurse"]
    whole, part = feature_frame(frame), feature_frame(nurses)
    assert (part["role"].cat.codes == CATEGORIES["role"].index("nurse")).all()
    assert part["specialty"].cat.codes.equals(whole.loc[nurses.index, "specialty"].cat.codes)


def test_feature_frame_accepts_text_as_read_from_csv(tmp_path):
    path = write_cohort(clean_cohort(), tmp_path / "cohort.csv")
    features = feature_frame(read_cohort(path))
    assert features["ee"].dtype == np.int64 and features["weekly_hours"].dtype == np.float64


def test_feature_frame_refuses_unknown_categories_and_missing_columns():
    frame = clean_cohort()
    frame.loc[0, "role"] = "chef"
    with pytest.raises(InputError, match="role: unknown categories \\['chef'\\]"):
        feature_frame(frame)
    with pytest.raises(InputError, match="missing: pa"):
        feature_frame(clean_cohort().drop(columns=["pa"]))


def test_feature_frame_appends_named_extras():
    frame = clean_cohort()
    frame["night_shifts"] = np.arange(len(frame)) % 5
    frame["unit"] = np.where(np.arange(len(frame)) % 2, "icu", "ward")
    features = feature_frame(frame, extra_features=["night_shifts", "unit"])
    assert tuple(features.columns[-2:]) == ("night_shifts", "unit")
    assert features["night_shifts"].dtype == np.float64
    assert list(features["unit"].cat.categories) == ["icu", "ward"]


def test_profile_load_keeps_arm_names_outside_the_catalog(tmp_path):
    frame = clean_cohort()
    frame.loc[0, "intervention"] = "yoga"
    path = write_cohort(frame, tmp_path / "cohort.csv")
    typed = load_cohort(path, training=False, catalog=load_catalog())
    assert typed.loc[0, "intervention"] == "yoga"
    assert tuple(typed["intervention"].cat.categories) == (*ARMS, "yoga")
