"""``recommender train`` and ``evaluate-policy`` read the service's settings their training
config names (``log.serve_config``, beside train.yaml), so a restore killed in the folder
those settings name (the audit store's, where ``backup --restore`` keeps its journal) is
finished before they read, as for the serve.yaml given by ``--serve-config``.

The killed restore's state and the spy that records what a command met come from
``test_restore_every_command_dec06d``.
"""

from __future__ import annotations

import pytest

from recommender.cli import main
from recommender.paths import config_path

from test_restore_every_command_dec06d import (  # noqa: F401 (fixtures)
    HALF,
    JOURNAL,
    WHOLE,
    _half_restored,
    _seen,
    home,
    spy,
)

COMMANDS = [["train"], ["train", "--from-log"], ["evaluate-policy", "--from-log"]]


@pytest.fixture
def served(tmp_path):
    """A training config naming, by a path relative to itself, service settings whose models
    folder is not the registry's, and a restore killed there."""
    folder = tmp_path / "served"
    folder.mkdir()
    _half_restored(folder)
    configs = tmp_path / "configs"
    configs.mkdir()
    serve = config_path("serve.yaml").read_text()
    assert "models_dir: null" in serve
    (configs / "my-serve.yaml").write_text(
        serve.replace("models_dir: null", f"models_dir: {folder}")
    )
    train = config_path("train.yaml").read_text()
    assert "  serve_config: null" in train
    (configs / "train.yaml").write_text(
        train.replace("  serve_config: null", "  serve_config: my-serve.yaml")
        # the catalog from the project's configs folder, as the shipped file means it
        .replace("catalog: interventions.yaml", f"catalog: {config_path('interventions.yaml')}")
    )
    return folder, configs / "train.yaml"


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_the_folder_train_yaml_names_is_settled_before_the_command_reads(
    home, served, spy, argv, capsys
):
    folder, train = served
    seen = spy(argv[0], folder)

    assert main([*argv, "--config", str(train)]) == 0
    assert seen == [WHOLE] and not (folder / JOURNAL).exists()
    assert "recovered: the restore of /backups/then" in capsys.readouterr().err


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_serve_config_given_wins_over_the_one_train_yaml_names(
    home, served, spy, tmp_path, argv, capsys
):
    folder, train = served
    other = tmp_path / "other.yaml"
    other.write_text(config_path("serve.yaml").read_text())  # models_dir: the registry's
    seen = spy(argv[0], folder)

    assert main([*argv, "--config", str(train), "--serve-config", str(other)]) == 0
    # the command reads the given settings, not train.yaml's: their folder is none of its own
    assert seen == [HALF] and _seen(folder) == HALF
    assert "recovered" not in capsys.readouterr().err


def test_a_training_config_that_cannot_be_read_still_settles_the_models_folder(
    home, tmp_path, spy, capsys
):
    broken = tmp_path / "train.yaml"
    broken.write_text("seed: [unclosed\n")
    _half_restored(home)
    seen = spy("train")

    assert main(["train", "--config", str(broken)]) == 0
    assert seen == [WHOLE]
    assert "recovered: the restore of /backups/then" in capsys.readouterr().err
