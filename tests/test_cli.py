"""The command's own behaviour: discovery, help, and how bad input becomes exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from recommender.cli import build_parser, main
from recommender.errors import InputError


def test_every_subcommand_has_help_and_runs_its_parser():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.choices, "no subcommand was discovered"
    for name, command_parser in sub.choices.items():
        assert command_parser.description, f"{name} has no help line"
        # `recommender --help` lists them as one table: the same form for every line
        line = command_parser.description
        assert line[0].islower() and not line.endswith("."), f"{name}: {line!r}"


def test_version_is_printed(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert "recommender" in capsys.readouterr().out


def test_input_error_becomes_exit_2(monkeypatch, capsys):
    def fail(args):
        raise InputError("column 'ee' row 3: value 61 is outside 0-54")

    parser = build_parser()
    assert "validate" in _commands()
    monkeypatch.setattr("recommender.cli.build_parser", lambda: _Patched(parser, fail))
    assert main(["validate", "x.csv"]) == 2
    assert "row 3" in capsys.readouterr().err


def test_help_is_instant_without_heavy_imports():
    # `recommender --help` must not import MLflow, BentoML, LightGBM or scipy: nothing happens on
    # import (scipy.stats, pulled in by the parser's rule for --alpha, took 0.6 s of its start).
    code = (
        "import sys; from recommender.cli import build_parser; build_parser(); "
        "heavy = [m for m in ('mlflow', 'bentoml', 'lightgbm', 'sklearn', 'scipy', 'pandas') "
        "if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _commands():
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices


class _Patched:
    def __init__(self, parser, run):
        self._parser, self._run = parser, run

    def parse_args(self, argv):
        args = self._parser.parse_args(argv)
        args._run = self._run
        return args
