"""The register stage: the version registered and its card published, all or nothing."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from pipelines._train_card import card_stage
from recommender.paths import models_dir

__all__ = ["publish_folder", "register_stage", "regated_note"]


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
    regate=None,
    facts_for=None,
):
    """Register the version, alias it, write the final card with its version; all or nothing.

    ``regate()`` gives the gate against the champion as it is at registration, when another
    run or a person changed it since ``gate`` (see :meth:`TrainingRun.register`), and
    ``facts_for(gate=..., previous_champion=...)`` the card's facts for that gate (``card_facts_`` are
    those for ``gate``); the card shows the champion the version was registered beside.
    """
    published: list[Path] = []

    def publish(registration):
        if registration.gate is not gate and facts_for is not None:
            facts = facts_for(
                gate=registration.gate, previous_champion=registration.previous_champion
            )
        else:
            facts = dict(card_facts_)
        facts["model"] = {
            **facts["model"],
            "version": registration.version,
            "aliases": registration.aliases,
            "previous_champion": registration.previous_champion,
        }
        target = models_dir() / "cards" / registration.version
        with tempfile.TemporaryDirectory(prefix="recommender-card-") as staging:
            card_stage(facts, plots, staging)
            run.log_artifacts(staging, "card")
            publish_folder(staging, target)
            published.append(target)
        registration.card_folder = target

    try:
        return run.register(
            model_info, gate=gate, reason=reason, on_registered=publish, regate=regate
        )
    except BaseException:
        # The version has been deleted again; so must its published card be.
        for target in published:
            shutil.rmtree(target, ignore_errors=True)
        raise


def regated_note(gate, registration, display) -> None:
    """Say so when the champion changed while the run trained and the gate was taken again."""
    if registration.gate is gate:
        return
    fresh = registration.gate
    display.note(
        f"the champion changed while this run trained (to version "
        f"{registration.previous_champion or 'none'}); the gate against it: "
        + ("passes: " if fresh.passed else "stays challenger: ")
        + fresh.reason
    )
