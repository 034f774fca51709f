"""A categorical extra feature with more values than a feature can have is refused at training,
by its count alone: such a column is an identifier (names, e-mails), which must neither train a
model nor be printed back in full by an error."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from recommender.cohort import MAX_EXTRA_LEVELS, validate_cohort
from recommender.errors import InputError
from recommender.model import frame_from_schema
from recommender.model._prediction import encode_rows
from test_cohort_helpers import ARMS, as_text, clean_cohort

N = 240


def with_extra(values):
    frame = clean_cohort(N)
    frame["supervisor"] = values
    return frame


def emails(n):
    return [f"dr.person{i}@hospital.org" for i in range(n)]


def extra_level_problems(frame, *, training=True):
    report = validate_cohort(frame, training=training, arms=ARMS, extra_features=["supervisor"])
    return [p for p in report.problems if p.rule == "extra_levels"], report


@pytest.mark.parametrize("typed", [True, False], ids=["typed", "as text"])
def test_an_identifier_named_as_an_extra_feature_is_refused_without_its_values(typed):
    frame = with_extra(emails(N))
    problems, report = extra_level_problems(frame if typed else as_text(frame))
    assert not report.ok
    [problem] = problems
    assert problem.column == "supervisor" and problem.severity == "error"
    assert f"{N:,} distinct values in {N:,} rows" in problem.message
    assert "identifier" in problem.message and f"at most {MAX_EXTRA_LEVELS}" in problem.message
    assert "@hospital.org" not in problem.message and problem.value is None
    assert "@hospital.org" not in report.format()


def test_too_many_groups_are_refused_without_being_called_an_identifier():
    units = [f"unit-{i % (MAX_EXTRA_LEVELS + 1)}" for i in range(N)]
    [problem], _ = extra_level_problems(with_extra(units))
    assert f"{MAX_EXTRA_LEVELS + 1} distinct values" in problem.message
    assert "identifier" not in problem.message


def test_a_feature_within_the_limit_numbers_and_scoring_tables_pass():
    units = [f"unit-{i % MAX_EXTRA_LEVELS}" for i in range(N)]
    assert extra_level_problems(with_extra(units))[0] == []
    # a number takes any values (a continuous score), as text too
    numbers = with_extra(np.linspace(0.0, 1.0, N))
    assert extra_level_problems(numbers)[0] == []
    assert extra_level_problems(as_text(numbers))[0] == []
    # scoring a table is not training: the model's own levels decide what it accepts
    assert extra_level_problems(with_extra(emails(N)), training=False)[0] == []


def schema(levels):
    return [{"name": "supervisor", "kind": "category", "categories": levels}]


def test_an_old_model_with_many_levels_does_not_print_them_all():
    seen = emails(MAX_EXTRA_LEVELS + 1)
    profiles = with_extra(["dr.new@hospital.org"] * N)
    with pytest.raises(InputError) as caught:
        frame_from_schema(profiles, schema(seen))
    assert f"one of the {len(seen)} values the model was trained on" in str(caught.value)
    assert "dr.person0@" not in str(caught.value)

    encoder = SimpleNamespace(lookups=[{level: i for i, level in enumerate(seen)}])
    with pytest.raises(InputError) as caught:
        encode_rows([{"supervisor": "dr.new@hospital.org"}], schema(seen), encoder)
    assert "dr.person0@" not in str(caught.value)
    assert caught.value.problems[0]["rule"].startswith(f"one of the {len(seen)} values")


def test_a_few_levels_are_still_listed():
    profiles = with_extra(["unit-z"] * N)
    with pytest.raises(InputError) as caught:
        frame_from_schema(profiles, schema(["unit-a", "unit-b"]))
    assert "one of ['unit-a', 'unit-b']" in str(caught.value)
