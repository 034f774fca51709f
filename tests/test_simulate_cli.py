"""The ``simulate`` and ``calibration`` commands."""

from __future__ import annotations

import pandas as pd
import pytest

from recommender.cli import main


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_simulate_writes_the_file_and_says_what(tmp_path, capsys, suffix):
    out = tmp_path / f"cohort{suffix}"
    assert (
        main(
            [
                "simulate",
                "--scenario",
                "default",
                "--n",
                "2000",
                "--seed",
                "7",
                "--assignment",
                "rct",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert len(frame) == 2000 and frame["person_id"].iloc[0] == "s7-000001"
    printed = capsys.readouterr().out
    assert "2,000 rows" in printed and str(out) in printed
    counts = frame["intervention"].value_counts()
    assert f"coaching {counts['coaching']:,}" in printed


def test_simulate_observational_with_shares_given_is_refused(tmp_path, capsys):
    code = main(
        [
            "simulate",
            "--assignment",
            "observational",
            "--rct-shares",
            "none=1",
            "--out",
            str(tmp_path / "x.csv"),
        ]
    )
    assert code == 2
    assert "--rct-shares" in capsys.readouterr().err


def test_simulate_rct_shares(tmp_path):
    out = tmp_path / "trial.parquet"
    assert (
        main(
            ["simulate", "--n", "1000", "--rct-shares", "none=0.5,coaching=0.5", "--out", str(out)]
        )
        == 0
    )
    assert set(pd.read_parquet(out)["intervention"].astype(str)) == {"none", "coaching"}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--scenario", "nope"], "--scenario: unknown scenario 'nope'"),
        (["--assignment", "cluster"], "--assignment: expected one of rct, observational"),
        (["--rct-shares", "none=0.5,yoga=0.5"], "--rct-shares: arm 'yoga' is not in scenario"),
        (["--rct-shares", "none=0.7,coaching=0.7"], "--rct-shares: shares must sum to 1"),
        (["--rct-shares", "none:1"], "--rct-shares: entry 'none:1' is not ARM=SHARE"),
        (["--catalog", "absent.yaml"], "--catalog: absent.yaml: no such catalog file"),
    ],
)
def test_simulate_bad_options_exit_2_naming_the_option(tmp_path, capsys, arguments, expected):
    assert main(["simulate", *arguments, "--out", str(tmp_path / "x.csv")]) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


_PEOPLE = "accepted: a whole number >= 1 and <= 1,000,000,000,000"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--n", "many"], f"argument --n: 'many' is not accepted; {_PEOPLE}"),
        (["--n", "0"], f"argument --n: '0' is not accepted; {_PEOPLE}"),
        (["--seed", "-3"], "argument --seed: '-3' is not accepted; accepted: a whole number >= 0"),
        # numpy's "Maximum allowed dimension exceeded" and an OverflowError were tracebacks
        (["--n", "1e30"], f"argument --n: '1e30' is not accepted; {_PEOPLE}"),
        (["--n", "1e400"], f"argument --n: '1e400' is not accepted; {_PEOPLE}"),
        # a 60-digit seed made person_ids of 68 characters, which `validate` then refused
        (["--seed", "1" + "0" * 59], "accepted: a whole number >= 0 and <= 9,223,372"),
    ],
)
def test_simulate_refuses_a_number_as_every_numeric_option_is(
    tmp_path, capsys, arguments, expected
):
    # As README says of every command's numeric options (it was "--n: expected a whole number").
    with pytest.raises(SystemExit) as stop:
        main(["simulate", *arguments, "--out", str(tmp_path / "x.csv")])
    assert stop.value.code == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_simulate_refuses_an_unknown_suffix(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path / "x.xlsx")]) == 2
    assert "--out: the file must end in .csv or .parquet" in capsys.readouterr().err


def test_calibration_writes_the_table(tmp_path, capsys):
    out = tmp_path / "calibration.md"
    code = main(["calibration", "--out", str(out), "--n", "20000", "--seed", "3"])
    text = out.read_text()
    assert "| study | quantity | target | check | simulated | MC SE | within | source |" in text
    assert "Dyrbye 2019" in text and "West 2016 Lancet" in text
    assert "recommender calibration --out" in text and "--seed 3" in text
    assert code in (0, 1)  # 1 only if a study lands outside at this small n; printed below
    assert "studies within target" in capsys.readouterr().out


@pytest.mark.parametrize("n", ["10", "1e30", "1e400"])
def test_calibration_rejects_an_n_out_of_range(capsys, n):
    with pytest.raises(SystemExit) as stop:
        main(["calibration", "--n", n])
    assert stop.value.code == 2
    assert (
        f"argument --n: '{n}' is not accepted; accepted: a whole number >= 1000 and <= "
        "1,000,000,000,000"
    ) in capsys.readouterr().err


def _out_of_memory(*args, **kwargs):
    # What numpy raises when an array of --n rows cannot be allocated (`--n 1e12` asks for
    # 7 TiB at once); patched in so that the test never depends on the machine's memory.
    raise MemoryError("Unable to allocate 7.28 TiB for an array")


@pytest.mark.parametrize(
    "command, patched",
    [
        (["simulate", "--n", "1e12"], "simulate_cohort"),
        (["calibration", "--n", "1e12"], "run_calibration"),
    ],
)
def test_a_cohort_too_large_for_memory_is_named_not_a_traceback(
    tmp_path, capsys, monkeypatch, command, patched
):
    """`simulate --n 1e12` and `calibration --n 1e12` ended in numpy's MemoryError traceback."""
    import recommender.simulate

    monkeypatch.setattr(recommender.simulate, patched, _out_of_memory)
    out = tmp_path / ("cohort.csv" if command[0] == "simulate" else "calibration.md")
    assert main([*command, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--n 1,000,000,000,000: not enough memory" in err and "smaller --n" in err
    assert not out.exists()
