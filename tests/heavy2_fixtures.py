"""Shared set-up of the real-server tests that train through the CLI: a small training config.

A `recommender train` subprocess reads configs/train.yaml unless given ``--config``: the
shipped settings (auto learner selection, three folds, a 20,000-row cohort) are a model worth
serving and cost minutes on a two-core machine. These tests need a registered version, not a
good one.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from service_fixtures import SMALL_TRAINING


def small_config(folder: Path, **changes) -> list[str]:
    """``--config`` of a small, fast training config written in ``folder``: the shipped one
    with :data:`service_fixtures.SMALL_TRAINING` (a T-learner, two folds), the settings the
    session's champion was trained with, and then ``changes`` (a mapping merged into its
    section: ``data={"n": 800}``)."""
    from pipelines.train import load_config

    settings = load_config()
    for key, value in [*SMALL_TRAINING.items(), *changes.items()]:
        settings[key] = {**settings[key], **value} if isinstance(value, dict) else value
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return ["--config", str(path)]
