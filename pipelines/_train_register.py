"""The register stage: the version registered and its card published, all or nothing."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from pipelines._train_card import card_stage
from recommender.paths import models_dir

__all__ = ["publish_folder", "register_stage"]


def publish_folder(source, target: Path) -> None:
    """Copy ``source`` to ``target`` so that readers see the old folder or the new, never half.

    The copy goes to a temporary sibling first and is renamed into place; a folder already at
    ``target`` (left by a deleted version of an earlier store) is moved aside for the swap and
    removed after it.
    """
    import os
    import secrets

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(4)
    fresh = target.parent / f".{target.name}.new-{token}"
    old = target.parent / f".{target.name}.old-{token}"
    try:
        shutil.copytree(source, fresh)
        if target.exists():
            os.replace(target, old)
        os.replace(fresh, target)
    except BaseException:
        if old.exists() and not target.exists():
            os.replace(old, target)
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def register_stage(
    run,
    model_info,
    *,
    gate,
    reason: str,
    card_facts_: dict,
    plots: dict,
    previous_champion: str | None,
):
    """Register the version, alias it, write the final card with its version; all or nothing."""
    published: list[Path] = []

    def publish(registration):
        facts = dict(card_facts_)
        facts["model"] = {
            **facts["model"],
            "version": registration.version,
            "aliases": registration.aliases,
            "previous_champion": previous_champion,
        }
        target = models_dir() / "cards" / registration.version
        with tempfile.TemporaryDirectory(prefix="recommender-card-") as staging:
            card_stage(facts, plots, staging)
            run.log_artifacts(staging, "card")
            publish_folder(staging, target)
            published.append(target)
        registration.card_folder = target

    try:
        return run.register(model_info, gate=gate, reason=reason, on_registered=publish)
    except BaseException:
        # The version has been deleted again; so must its published card be.
        for target in published:
            shutil.rmtree(target, ignore_errors=True)
        raise
