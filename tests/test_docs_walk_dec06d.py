"""What a new user met walking the README's commands, and the code fixed for it.

`recommender train --from-log` on a log of 3,000 people served by the evidence-only model
printed "off-policy (doubly robust) on the held-out log: +nan EE points vs usual care (+nan to
+nan)": the value was not measurable (too few effective rows), as the card and the README say
it, and the line printed the missing figure as a number.

`recommender serve --check` said "ready to serve" over an audit salt of 5 characters, with
which `recommender serve` warned at start and gave crisis answers only.
"""

from __future__ import annotations

import math
import types

import pandas as pd
import pytest

import pipelines._from_log as from_log
from pipelines import train
from recommender.cli import main
from service_fixtures import TEST_PORTS_ENV, free_port
from service_fixtures import service_home  # noqa: F401 - a fixture

LABEL = "this model's best arms (held-out log)"
WHY = (
    f"{LABEL}: DR and IPS and SNIPS not measurable: its weights rest on rows logged with so "
    "small a probability that too few of them are expected to be served for a normal interval"
)


class _Display:
    def __init__(self):
        self.lines = []

    def note(self, text: str) -> None:
        self.lines.append(text)


def _printed(monkeypatch, rows, notes) -> str:
    monkeypatch.setattr(from_log, "off_policy_table", lambda *a, **k: rows)
    monkeypatch.setattr(from_log, "off_policy_notes", lambda *a, **k: notes)
    holdout = pd.DataFrame({"ee": [30.0, 20.0], "ee_followup": [25.0, 21.0]})
    cohort = types.SimpleNamespace(catalog=types.SimpleNamespace(control="none"), loop={})
    settings = {"evaluation": {"alpha": 0.1}}
    display = _Display()
    train._off_policy_note(
        cohort,
        model=None,
        evaluation=types.SimpleNamespace(dr_scores=None),
        split=types.SimpleNamespace(holdout=holdout),
        settings=settings,
        display=display,
    )
    assert cohort.loop["off_policy"]["rows"] == rows
    (line,) = display.lines
    return line


@pytest.mark.parametrize("missing", [math.nan, None])
def test_an_unmeasurable_off_policy_value_is_said_so_not_printed_as_nan(monkeypatch, missing):
    rows = [[LABEL, m, missing, missing, missing, 826, 19.3, 124] for m in ("DR", "IPS", "SNIPS")]
    line = _printed(monkeypatch, rows, [WHY])
    assert "nan" not in line.lower()
    assert line.startswith("off-policy (doubly robust) on the held-out log: not measurable: ")
    assert "too few of them are expected to be served" in line


def test_a_measured_off_policy_value_keeps_its_figure_and_interval(monkeypatch):
    rows = [[LABEL, m, -1.234, -2.5, 0.25, 826, 400.0, 0] for m in ("DR", "IPS", "SNIPS")]
    line = _printed(monkeypatch, rows, [])
    assert line == (
        "off-policy (doubly robust) on the held-out log: -1.23 EE points vs usual care "
        "(-2.50 to +0.25)"
    )


def test_the_evidence_gate_on_a_home_with_a_champion_says_promote_needs_force(monkeypatch):
    """README, learning loop, step 1: `train --evidence-only` on a home with a champion and no
    log said the model "stays challenger until a person promotes it", and `recommender promote
    <version>` then refused it as having failed its gate: the reason says --force is needed."""
    import pipelines._train_gate as train_gate
    import recommender.registry as registry
    from pipelines._train_evidence import evidence_gate

    monkeypatch.setattr(train_gate, "gate_on_log", lambda *a, **k: (None, None))
    monkeypatch.setattr(registry, "aliases", lambda name: {"champion": "2"})
    config = {"gate": {"alpha": 0.1}, "registry": {"model_name": "burnout-recommender"}}
    decision = evidence_gate(None, None, config)
    assert not decision.passed
    assert "champion version 2 exists" in decision.reason
    assert "--force" in decision.reason


def _check(capsys) -> tuple[int, str, list[str]]:
    # --check binds the port a moment: one of this helper's loopback ports (3164-3169)
    port = free_port()
    code = main(["serve", "--check", "--host", "127.0.0.1", "--port", str(port)])
    said = capsys.readouterr()
    return code, said.out, said.err.splitlines()


@pytest.fixture(autouse=True)
def _ports(monkeypatch):
    monkeypatch.setenv(TEST_PORTS_ENV, "3164-3169")


def test_serve_check_warns_of_a_salt_serve_cannot_use_and_passes(
    service_home,
    monkeypatch,
    capsys,  # noqa: F811
):
    code, out, err = _check(capsys)
    assert code == 0 and out.startswith("ready to serve")
    assert not [line for line in err if "audit salt" in line]

    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", "short")
    code, out, err = _check(capsys)
    assert code == 0 and out.startswith("ready to serve")  # serve starts, for crisis answers
    (salt,) = [line for line in err if "audit salt" in line]
    assert salt.startswith("warning: the audit salt from RECOMMENDER_AUDIT_SALT")
    assert "has 5 characters; a salt needs at least 16" in salt
    assert "the service starts for crisis answers only" in salt
    assert not (service_home / "audit.salt").exists()  # --check makes nothing
    assert not (service_home / "audit.db").exists()


def test_serve_check_makes_no_salt_file_and_says_nothing_when_serve_would_make_one(
    service_home,
    monkeypatch,
    capsys,  # noqa: F811
):
    monkeypatch.delenv("RECOMMENDER_AUDIT_SALT")
    monkeypatch.delenv("RECOMMENDER_SECRETS_DIR", raising=False)
    code, out, err = _check(capsys)
    assert code == 0 and out.startswith("ready to serve")
    assert not [line for line in err if "audit salt" in line]
    assert not (service_home / "audit.salt").exists()

    (service_home / "audit.salt").write_text("")  # a start stopped while making it
    code, out, err = _check(capsys)
    assert code == 0
    (salt,) = [line for line in err if "audit salt" in line]
    assert salt.startswith(f"warning: the audit salt file {service_home / 'audit.salt'} is empty")
