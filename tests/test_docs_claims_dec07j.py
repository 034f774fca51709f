"""The limits the README states and the service log lines it quotes are the code's.

Found reviewing README.md against the code (2026-12-07): its service-log paragraph said that a
refused request has its access-log line alone, while ``POST /outcomes`` logs a line of its own
for every report, refused ones included; and its example answers still gave the figures of a
simulator changed since. The limits (``256`` keys, ``64 KiB``, ``16`` characters, ...) were
each right, but nothing tied them to the constants they describe: a constant changed in code
would leave the README quoting the old one. Each limit is now read from its constant and looked
for, as the README writes it, in the README; and each log line the README quotes is matched
against what the service logs. (Commands, flags, routes, config keys, variables, paths and the
benchmark figures: tests/test_docs_commands.py and tests/test_docs_truth_dec06.py.)
"""

from __future__ import annotations

import ast
import inspect
import logging
import re
from pathlib import Path

import pytest

from recommender.errors import InputError
from service_fixtures import (  # noqa: F401  (fixtures)
    asgi_client,
    auth,
    linear_model,
    outcome,
    profile,
    service_home,
)

ROOT = Path(__file__).resolve().parents[1]


def _flat(text: str) -> str:
    """The text with every run of white space one space (a phrase may span a line break)."""
    return " ".join(text.split())


def _readme() -> str:
    return _flat((ROOT / "README.md").read_text(encoding="utf-8"))


def _as_written(module, name: str):
    """The literal ``name`` is given in ``module``'s source, whatever a fixture set it to."""
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{module.__name__} assigns no literal {name}")


def stated_limits() -> list[tuple[str, str]]:
    """``(where in the code, the phrase the README states it with)`` for each limit the README
    gives a number for, the phrase built from the code's constant."""
    from pipelines._from_log import FEW_EFFECTIVE_ROWS
    from pipelines._train_cohort import fit_min_arm_rows
    from pipelines._train_key import COMPARISON_MIN_ROWS
    from pipelines._train_config import load_config
    from recommender import config_file
    from recommender.cohort._contract import PERSON_ID_MAX_LENGTH, PRACTICE_START_AGE
    from recommender.cohort._features import MAX_EXTRA_LEVELS
    from recommender.evaluation._off_policy import MIN_TAIL_ROWS
    from recommender.evaluation._subgroups import MIN_CELL
    from recommender.card._fairness import TOP_REASONS
    from recommender.policy._limits import MAX_CAPACITY
    from recommender.policy._ranking import FIGURE_DECIMALS
    from recommender.registry._pyfunc import DEFAULT_PARAMS
    from recommender.service import _reload_watcher
    from recommender.service._audit_store import WAL_SIZE_LIMIT
    from recommender.service._auth import MIN_KEY_CHARS
    from recommender.service._body_checks import MAX_OBJECT_KEYS, MAX_PROFILE_BODY_BYTES
    from recommender.service._crisis import CRISIS_RECORD_WAIT
    from recommender.service._erasure import PART_ROWS
    from recommender.service._gate import MAX_BODY_BYTES
    from recommender.service._migrate import LOCK_WAIT_SECONDS
    from recommender.service._outcome_keys import MAX_KEY_CHARS
    from recommender.service._problems import MAX_UNKNOWN_FIELDS
    from recommender.service._requests import MAX_BATCH_ROWS, STORED_ID_MAX_LENGTH
    from recommender.service import _store_check

    # as written in the module: the PostgreSQL cluster's session fixture (tests/conftest.py)
    # sets CHECK_WAIT to 60 for every test that runs after it in the same process
    CHECK_EVERY, CHECK_WAIT, CONNECT_SECONDS = (
        _as_written(_store_check, name) for name in ("CHECK_EVERY", "CHECK_WAIT", "CONNECT_SECONDS")
    )
    from recommender.service._store_salt import MIN_SALT_CHARS

    def whole(x: float) -> str:
        assert float(x) == int(x), x
        return f"{int(x):,}"

    retry_minutes = _reload_watcher.CHAMPION_RETRY_MAX_SECONDS / 60
    return [
        ("MAX_OBJECT_KEYS", f"more than {MAX_OBJECT_KEYS} keys"),
        ("MAX_PROFILE_BODY_BYTES", f"body over {whole(MAX_PROFILE_BODY_BYTES / 1024)} KiB"),
        ("MAX_BODY_BYTES", f"over {whole(MAX_BODY_BYTES / 2**20)} MiB"),
        ("MAX_BATCH_ROWS", f"up to {whole(MAX_BATCH_ROWS)} profiles"),
        ("MAX_CAPACITY", f"from 0 to {whole(MAX_CAPACITY)} per arm"),
        ("MIN_KEY_CHARS", f"needs {MIN_KEY_CHARS} characters at least"),
        ("MIN_SALT_CHARS", f"shorter than {MIN_SALT_CHARS} characters"),
        ("MAX_KEY_CHARS", f"1 to {MAX_KEY_CHARS} printable ASCII characters"),
        ("PERSON_ID_MAX_LENGTH", f"takes 1 to {PERSON_ID_MAX_LENGTH} characters"),
        ("PRACTICE_START_AGE", f"at most its `age` minus {PRACTICE_START_AGE}"),
        ("MAX_EXTRA_LEVELS", f"at most {MAX_EXTRA_LEVELS} values in the training table"),
        ("config_file.MAX_BYTES", f"over {whole(config_file.MAX_BYTES / 1e6)} MB"),
        ("config_file.MAX_VALUES", f"past {whole(config_file.MAX_VALUES)} values"),
        ("CRISIS_RECORD_WAIT", f"waits at most {whole(CRISIS_RECORD_WAIT)} s for its audit"),
        ("CHAMPION_RETRY_MAX_SECONDS", f"up to {whole(retry_minutes)} minutes apart"),
        ("CONNECT_SECONDS", f"waited for {CONNECT_SECONDS} s at most"),
        (
            "CHECK_EVERY, CHECK_WAIT",
            f"one short check at most every {whole(CHECK_EVERY)} s, "
            f"waited for {whole(CHECK_WAIT)} s at most",
        ),
        ("LOCK_WAIT_SECONDS", f"holds for more than {LOCK_WAIT_SECONDS} s"),
        ("WAL_SIZE_LIMIT", f"cuts it back to {whole(WAL_SIZE_LIMIT / 2**20)} MiB"),
        ("MAX_UNKNOWN_FIELDS", f"more than {MAX_UNKNOWN_FIELDS} keys beyond its fields' count"),
        ("STORED_ID_MAX_LENGTH", f"each of at most {whole(STORED_ID_MAX_LENGTH)} characters"),
        ("PART_ROWS", f"{whole(PART_ROWS)} by default"),
        ("MIN_CELL", f"`min_cell`, {MIN_CELL} by default"),
        ("COMPARISON_MIN_ROWS", f"when at least {COMPARISON_MIN_ROWS} and a quarter"),
        ("FEW_EFFECTIVE_ROWS", f"below {FEW_EFFECTIVE_ROWS} a note says so"),
        (
            "MIN_TAIL_ROWS",
            f"below {MIN_TAIL_ROWS['dr']} ({MIN_TAIL_ROWS['snips']} for SNIPS",
        ),
        (
            "FIGURE_DECIMALS",
            f"effects rounded to {10**-FIGURE_DECIMALS:.{FIGURE_DECIMALS}f} points",
        ),
        ("TOP_REASONS", f"among an answer's top {TOP_REASONS} reasons"),
        (
            "pyfunc DEFAULT_PARAMS",
            f"(`alpha` {DEFAULT_PARAMS['alpha']}, `max_overlap` {DEFAULT_PARAMS['max_overlap']}",
        ),
        (
            "fit_min_arm_rows(configs/train.yaml)",
            f"({fit_min_arm_rows(load_config(ROOT / 'configs' / 'train.yaml'))} "
            "with the shipped config",
        ),
    ]


def limit_problems(readme: str, limits: list[tuple[str, str]]) -> list[str]:
    """``constant: phrase`` for each limit whose phrase the README does not hold."""
    return [f"{where}: {phrase!r}" for where, phrase in limits if phrase not in readme]


def test_the_check_finds_a_limit_the_readme_states_otherwise():
    limits = [("MAX_OBJECT_KEYS", "more than 512 keys"), ("PART_ROWS", "5,000 by default")]
    assert limit_problems(_readme(), limits) == ["MAX_OBJECT_KEYS: 'more than 512 keys'"]


def test_every_limit_the_readme_states_is_the_codes_constant():
    limits = stated_limits()
    assert len(limits) >= 25  # against a check that reads nothing
    assert limit_problems(_readme(), limits) == []


# --- the service log lines the README quotes -------------------------------------------------


def quoted_log_lines(readme: str) -> list[str]:
    """The service log lines the README quotes whole (code spans of what an answer, a report or
    a refusal logs), with their placeholders (``<id>``, ``<span>``)."""
    part = readme.split("**The service log**", 1)[1].split("The auditor's and the scientist's", 1)[
        0
    ]
    spans = re.findall(r"`([^`]+)`", part)
    return [s for s in spans if re.match(r"(outcomes )?(recorded in|refused)|answered 404", s)]


def as_pattern(line: str) -> re.Pattern:
    """A quoted line as a pattern: ``<...>`` stands for one word, and a line quoted without its
    end (the request it names) may be followed by more."""
    parts = re.split(r"<[a-z]+>", line)
    return re.compile(r"\S+".join(map(re.escape, parts)) + r"(;.*|\b.*)?$")


def test_the_readme_quotes_log_lines_to_check():
    lines = quoted_log_lines(_readme())
    assert (
        "outcomes refused (409), nothing recorded: 1 of 1 rows refused, 1 of them as duplicates"
        in (lines)
    )
    assert len(lines) >= 4
    assert as_pattern("recorded in the audit log: request <id>").match(
        "recorded in the audit log: request 0f8e"
    )
    assert not as_pattern("outcomes refused (409), nothing recorded").match(
        "outcomes refused (422), nothing recorded"
    )


def test_every_log_line_the_readme_quotes_is_one_the_service_logs(asgi_client, caplog):
    caplog.set_level(logging.INFO, logger="recommender.service")
    program = auth("program")
    assert asgi_client.post("/recommend", json=profile(), headers=program).status_code == 200
    report = {"outcomes": [outcome(profile()["person_id"])]}
    assert asgi_client.post("/outcomes", json=report, headers=program).status_code == 200
    assert asgi_client.post("/outcomes", json=report, headers=program).status_code == 409
    assert asgi_client.get("/no/such/path").status_code == 404
    logged = [r.getMessage() for r in caplog.records if r.name == "recommender.service"]
    missing = [
        line
        for line in quoted_log_lines(_readme())
        if not any(as_pattern(line).match(message) for message in logged)
    ]
    assert missing == [], logged


def test_an_erasure_that_records_none_logs_no_python_none(asgi_client, caplog):
    # The README says /erasures adds one line of what became of the request; a dry run's read
    # "erasure None by program: ...", Python's None where the erasure's id goes.
    caplog.set_level(logging.INFO, logger="recommender.service")
    body = {"person_ids": ["p-never-served"], "dry_run": True}
    assert asgi_client.post("/erasures", json=body, headers=auth("program")).status_code == 200
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("erasure ")]
    assert line.startswith("erasure (none recorded) by program: 0 of 1 people found"), line


# --- a cohort file is never written over by its own scored table -------------------------------


def _cohort_file(folder: Path, name: str) -> Path:
    """A program's cohort file (refused before its rows are read, so any rows do)."""
    path = folder / name
    path.write_text("person_id,age,role\np-1,41,nurse\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("data", "out"), [("cohort.csv", "cohort.csv"), ("x.crisis.csv", "x.csv")])
def test_score_refuses_an_out_that_would_write_over_its_cohort_file(tmp_path, data, out):
    # The README says it of allocate ("an --out whose plan, or a file beside it, would be the
    # --data file is refused"); score wrote its table over the cohort file it read, the
    # program's only copy of its people's profiles gone, and said "scored".
    from pipelines.score import score_file

    cohort = _cohort_file(tmp_path, data)
    before = cohort.read_bytes()
    with pytest.raises(InputError, match="would be written over the cohort file it scores"):
        score_file("champion", cohort, tmp_path / out)
    assert cohort.read_bytes() == before


def test_allocate_still_refuses_an_out_that_would_write_over_its_cohort_file(tmp_path):
    from pipelines.allocate import plan_cohort

    cohort = _cohort_file(tmp_path, "x.fairness.csv")
    with pytest.raises(InputError, match="the plan would be written over the cohort file it plans"):
        plan_cohort("champion", cohort, tmp_path / "x.csv")
