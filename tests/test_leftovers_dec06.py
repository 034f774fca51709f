"""Small gaps a user hit, closed on 2026-12-06, each checked as the user met it.

1. A plan's fairness table suppresses the groups the served model's card suppresses (its
   ``card.min_cell``), not always those under 11.
2. Every numeric option of every command refuses a value by the option's name (``--partitions``)
   and what it accepts, where some said ``invalid int value`` or ``partitions must ...``; the
   crisis-flagged rows of a cohort file still get their resources first.
3. batch-score says an input with no rows is empty, naming the columns needed, as score does;
   so does ``outcomes import`` of a file without rows, and that nothing was imported.
4. ``GET /metrics`` in process answers at once (503, saying why) where it hung: the request
   timeout layer waited for an answer from an app that had already failed.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest

from recommender.model import model_min_cell
from spark_fixtures import spark  # noqa: F401 - the process's one local Spark session
from test_cli_crisis_first import flagged_file  # noqa: F401  (fixture: 3 of 4 rows flagged)
from service_fixtures import (  # noqa: F401  (fixtures)
    LinearModel,
    asgi_client,
    auth,
    profile,
    recommender_home,
    service_home,
    train_version,
)

# -- 1. the plan's smallest reported group is the model card's ----------------------------------


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"min_cell": 20}, 20),
        # trained before min_cell was recorded: its support's min_rows was card.min_cell
        ({"training_support": {"min_rows": 15}}, 15),
        ({"min_cell": 20, "training_support": {"min_rows": 11}}, 20),
        ({}, 11),  # an earlier evidence-only model: the card's default
        ({"min_cell": 5}, 11),  # never under the privacy floor
        ({"min_cell": "twenty"}, 11),
    ],
)
def test_model_min_cell_reads_the_card_setting_with_11_as_floor(metadata, expected):
    assert model_min_cell(SimpleNamespace(metadata=metadata)) == expected
    assert model_min_cell(object()) == 11  # a model without metadata


def _cohort_with_groups_of(sizes: dict[str, int]) -> list[dict]:
    # One role per group of the given size; everyone else as the stand-in profile.
    rows = []
    for role, n in sizes.items():
        rows += [profile(person_id=f"p{len(rows) + i}", role=role) for i in range(n)]
    return rows


def _role_rows(fairness: list[dict]) -> dict[str, dict]:
    return {r["group"]: r for r in fairness if r["attribute"] == "role" and r["arm"] == "any"}


@pytest.fixture
def linear_model():
    # A model whose training config set card.min_cell: 20.
    model = LinearModel()
    model.metadata = {"min_cell": 20}
    return model


def test_allocate_suppresses_the_groups_the_served_models_card_does(asgi_client):
    # 15 nurses: shown by a plan that always used 11, hidden by a card whose min_cell is 20.
    profiles = _cohort_with_groups_of({"physician": 40, "nurse": 15, "resident": 25})
    response = asgi_client.post(
        "/allocate", json={"profiles": profiles, "budget": 5000}, headers=auth("program")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["min_cell"] == 20
    roles = _role_rows(body["fairness"])
    assert roles["nurse"]["suppressed"] and roles["nurse"]["people"] is None
    # one group hidden: the next smallest too, so the total cannot give it away
    assert roles["resident"]["suppressed"]
    assert not roles["physician"]["suppressed"] and roles["physician"]["people"] == 40


def test_the_openapi_document_says_which_min_cell_applies(asgi_client):
    text = json.dumps(asgi_client.get("/docs.json").json())
    assert "groups under 11 people suppressed" not in text
    assert "groups under `min_cell` people suppressed" in text
    assert "The smallest group `fairness` reports on: the served model's card's" in text


@pytest.fixture(scope="module")
def home_with_min_cell_20(tmp_path_factory):
    home = tmp_path_factory.mktemp("min-cell-20")
    train_version(home, card={"min_cell": 20})
    return home


def test_recommender_allocate_plans_with_the_models_min_cell(
    home_with_min_cell_20, tmp_path, monkeypatch, capsys
):
    from recommender.cli import main
    from recommender.registry import load_champion
    from recommender.simulate import simulate_cohort

    cohort = simulate_cohort("default", 200, seed=3)
    cohort = cohort[[c for c in cohort.columns if not c.startswith("true_effect")]]
    sizes = cohort["role"].value_counts()
    assert 11 <= sizes["app"] < 20  # a group an 11-person floor would show
    data, out = tmp_path / "cohort.csv", tmp_path / "plan.csv"
    cohort.to_csv(data, index=False)
    monkeypatch.setenv("RECOMMENDER_ACTOR", "test-suite")
    with recommender_home(home_with_min_cell_20) as home:
        model, version = load_champion()
        assert model.metadata["min_cell"] == 20 == model_min_cell(model)
        card = json.loads((home / "cards" / version / "card.json").read_text())
        assert card["subgroups"]["min_cell"] == 20
        code = main(["allocate", "--data", str(data), "--out", str(out), "--budget", "20000"])
    said = capsys.readouterr()
    assert code == 0, said.err
    assert "groups under 20 people suppressed" in said.out
    fairness = pd.read_csv(out.with_name("plan.fairness.csv"))
    roles = fairness[(fairness["attribute"] == "role") & (fairness["arm"] == "any")]
    app = roles[roles["group"] == "app"].iloc[0]
    assert app["suppressed"] and pd.isna(app["people"])
    assert (roles.loc[~roles["suppressed"], "people"] >= 20).all()


def test_an_evidence_only_model_records_its_cards_min_cell(tmp_path, monkeypatch):
    import recommender.catalog
    from pipelines.train import run_training
    from recommender.registry import load_champion
    from test_loop_evidence import evidence_catalog

    monkeypatch.setattr(recommender.catalog, "load_catalog", lambda *a, **k: evidence_catalog())
    overrides = {"source": "evidence", "card": {"min_cell": 25}}
    with recommender_home(tmp_path / "home"):
        run_training(overrides=overrides)
        model, _ = load_champion()
    assert model.metadata["source"] == "evidence" and model_min_cell(model) == 25


# -- 2. every numeric option of every command is refused by name, with what it accepts ---------


def _commands(parser, path=()):
    """Every (command path, parser) of the CLI, nested actions (``outcomes import``) included."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _commands(sub, (*path, name))


def _typed_options():
    from recommender.cli import build_parser

    return [
        (command, action.option_strings[-1], sub)
        for command, sub in _commands(build_parser())
        for action in sub._actions
        if action.type is not None and action.option_strings
    ]


def test_the_typed_options_are_the_numeric_ones():
    found = {(" ".join(c), option) for c, option, _ in _typed_options()}
    assert found == {
        ("allocate", "--budget"),
        ("allocate", "--alpha"),
        ("allocate", "--time-limit"),
        ("batch-score", "--partitions"),
        ("batch-score", "--alpha"),
        ("calibration", "--n"),
        ("calibration", "--seed"),
        ("score", "--alpha"),
        ("serve", "--port"),
        ("simulate", "--n"),
        ("simulate", "--seed"),
        ("train", "--seed"),
        ("validate", "--min-arm-rows"),
        ("validate", "--max-listed"),
    }


_NOT_NUMBERS = ["abc", "", "-1", "nan"]


@pytest.mark.parametrize(
    ("command", "option"),
    [(c, o) for c, o, _ in _typed_options() if c != ("batch-score",)],  # Spark: below
)
@pytest.mark.parametrize("value", _NOT_NUMBERS)
def test_a_numeric_option_refused_names_the_option_and_what_it_accepts(
    flagged_file, tmp_path, capsys, command, option, value
):
    from recommender.cli import main

    sub = dict((c, s) for c, _, s in _typed_options())[command]
    argv = [*command]
    for action in sub._actions:
        if action.required and action.option_strings:
            given = {"--data": flagged_file, "--out": tmp_path / "out.csv"}
            argv += [action.option_strings[-1], str(given[action.option_strings[-1]])]
        elif not action.option_strings and action.nargs is None:
            argv.append(str(flagged_file))  # a positional: the cohort file
    with pytest.raises(SystemExit) as refused:
        main([*argv, option, value])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    said = err.strip().splitlines()[-1]
    assert f"error: argument {option}: {value!r} is not accepted; accepted: " in said, said
    assert "invalid" not in said and "Traceback" not in err
    if "--data" in argv:  # the crisis-flagged row has its resources all the same
        crisis = pd.read_csv(tmp_path / "out.crisis.csv")
        assert crisis["person_id"].tolist() == ["p1", "p3", "p4"] and "crisis resources now" in said
        assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    ("argv", "accepted"),
    [
        (["batch-score", "--partitions", "0"], "a whole number >= 1"),
        (["score", "--alpha", "0"], "a number strictly between 0 and 1"),
        (["score", "--alpha", "1"], "a number strictly between 0 and 1"),
        (["allocate", "--time-limit", "0"], "seconds > 0"),
        (["serve", "--port", "0"], "a port from 1 to 65535"),
        (["serve", "--port", "65536"], "a port from 1 to 65535"),
        (["validate", "--min-arm-rows", "0"], "a whole number >= 1"),
        (["validate", "--max-listed", "2.5"], "a whole number >= 0"),
    ],
)
def test_zero_and_other_out_of_range_values_are_refused_alike(argv, accepted):
    import argparse

    command, option, value = argv
    with pytest.raises(argparse.ArgumentTypeError, match=f"accepted: {accepted}"):
        _type_of(command, option)(value)


@pytest.mark.parametrize(
    ("argv", "value"),
    [
        (["allocate", "--budget", "0"], 0.0),
        (["train", "--seed", "0"], 0),
        (["validate", "--max-listed", "0"], 0),
        (["batch-score", "--partitions", "1_000"], 1000),
        (["serve", "--port", "3171"], 3171),
    ],
)
def test_values_in_range_are_taken(argv, value):
    command, option, given = argv
    assert _type_of(command, option)(given) == value


def _type_of(command: str, option: str):
    sub = dict((" ".join(c), s) for c, _, s in _typed_options())[command]
    return next(a for a in sub._actions if option in a.option_strings).type


# -- 3. empty inputs of batch-score and outcomes import are said to be empty ---------------------

_NEEDED = "person_id, age, gender, role"


def _empty_inputs(folder):
    """Every empty input batch-score may be given, with the words its refusal starts with."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recommender.cohort import PROFILE_COLUMNS

    parts = folder / "parts.csv"
    parts.mkdir()
    (parts / "part-00000.csv").write_bytes(b"")
    (parts / "part-00001.csv").write_bytes(b"")
    (parts / "_SUCCESS").write_bytes(b"")
    zero = folder / "zero.parquet"
    zero.write_bytes(b"")
    schema_only = folder / "schema_only.parquet"
    pq.write_table(pa.table({c: pa.array([], pa.string()) for c in PROFILE_COLUMNS}), schema_only)
    no_columns = folder / "no_columns.parquet"
    pq.write_table(pa.table({}), no_columns)
    spark_empty = folder / "spark_empty.parquet"  # what Spark leaves of an empty write
    spark_empty.mkdir()
    (spark_empty / "_SUCCESS").write_bytes(b"")
    return [
        (parts, "the folder's part files are empty (no header row, no rows)"),
        (zero, "the file is empty (no columns, no rows)"),
        (schema_only, f"the file is empty ({len(PROFILE_COLUMNS)} columns, no rows)"),
        (no_columns, "the file is empty (no columns, no rows)"),
        (spark_empty, "the folder's part files are empty (no columns, no rows)"),
    ]


def test_batch_score_says_an_empty_input_is_empty_before_spark_reads_it(tmp_path):
    from pipelines.batch import read_cohort_spark
    from recommender.errors import InputError

    for path, said in _empty_inputs(tmp_path):
        # refused before any Spark call: Spark said "reduce() of empty iterable" or "Unable to
        # infer schema for Parquet" of these
        with pytest.raises(InputError) as refused:
            read_cohort_spark(None, path)
        assert str(refused.value).startswith(f"{path}: {said}; accepted: "), path
        assert _NEEDED in str(refused.value)


def test_score_says_an_empty_parquet_is_empty_as_batch_score_does(tmp_path):
    from recommender.cohort import read_cohort
    from recommender.errors import InputError

    for path, said in _empty_inputs(tmp_path):
        if path.is_dir():
            continue  # score reads one file
        with pytest.raises(InputError) as refused:
            read_cohort(path)
        assert str(refused.value).startswith(f"{path}: {said}; accepted: Parquet whose columns")
        assert _NEEDED in str(refused.value)


@pytest.mark.slow
def test_recommender_batch_score_of_empty_parts_exits_2_saying_so(
    spark, tmp_path, capsys, monkeypatch
):
    from recommender.cli import main

    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path / "home"))  # no model: never reached
    parts, said = _empty_inputs(tmp_path)[0]
    out = tmp_path / "scored.parquet"
    assert main(["batch-score", "--data", str(parts), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{parts}: {said}" in err and "reduce()" not in err and not out.exists()


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("outcomes.csv", b"", "the file is empty"),
        ("outcomes.csv", b"\n\n", "the file is empty"),
        (
            "outcomes.csv",
            b"person_id,measured_at,arm_taken,ee_followup,dp_followup,pa_followup\n",
            "the file has its header row but no rows",
        ),
        ("outcomes.json", b"[]", "the file holds no outcomes"),
        ("outcomes.jsonl", b"", "the file is empty"),
    ],
)
def test_outcomes_import_of_a_file_without_rows_names_the_columns_and_imports_nothing(
    service_home, tmp_path, capsys, name, content, said
):
    from recommender.cli import main
    from recommender.service import AuditLog, resolve_salt

    AuditLog(
        f"sqlite:///{service_home / 'audit.db'}", salt=resolve_salt(None, service_home)
    ).close()
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["outcomes", "import", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{name}: {said}, so nothing was imported; accepted: CSV with a header row of " in err
    assert "person_id, measured_at, arm_taken, ee_followup, dp_followup, pa_followup" in err
    assert "No columns to parse" not in err and "recorded 0" not in err


# -- 4. GET /metrics in process answers at once ------------------------------------------------


def _within(seconds: float, call):
    """``call()``'s result, or a failure if it has not returned within ``seconds`` (it ran
    in a thread: a hang fails the test instead of stopping the suite)."""
    import threading

    done = {}

    def run():
        try:
            done["value"] = call()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            done["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"no answer within {seconds} s: the call hangs"
    if "error" in done:
        raise done["error"]
    return done["value"]


def test_metrics_in_process_answer_at_once_saying_why_there_are_none(asgi_client, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    # It hung: BentoML's client raised before any answer and the request timeout layer waited
    # for an answer that never came (120 s), then returned none.
    response = _within(60, lambda: asgi_client.get("/metrics"))
    assert response.status_code == 503
    said = response.json()["error"]
    assert "in process" in said and "recommender serve" in said
    assert "PROMETHEUS_MULTIPROC_DIR" in said


def _through_deadline(app, timeout: float) -> list[dict]:
    """The messages an HTTP request through the request timeout layer sends (in a thread)."""
    import asyncio

    from recommender.service._deadline import Deadline

    async def request():
        sent = []

        async def send(message):
            sent.append(message)

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        await Deadline(app, timeout=timeout)({"type": "http"}, receive, send)
        return sent

    return _within(30, lambda: asyncio.run(request()))


def test_an_app_that_fails_before_answering_is_not_held_for_the_timeout():
    async def failing(scope, receive, send):
        raise RuntimeError("failed before its first message")

    async def quiet(scope, receive, send):
        return None  # no answer at all

    with pytest.raises(RuntimeError, match="before its first message"):
        _through_deadline(failing, timeout=3600)  # on to the layers that answer 500
    assert _through_deadline(quiet, timeout=3600) == []


def test_the_timeout_still_answers_504_when_nothing_has_begun():
    import asyncio

    async def slow(scope, receive, send):
        await asyncio.Event().wait()  # never answers

    assert _through_deadline(slow, timeout=0.05)[0]["status"] == 504
