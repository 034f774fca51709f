"""A served model seen under the ids of the catalog in force, for the arms it renamed.

A model learns arms by id; a program that renames an arm (``renamed_from`` in the catalog)
would otherwise be served a new arm the model never learnt. :class:`RenamedArms` shows the
model's predictions and explanations under the new ids, so the engine ranks, plans and explains
the renamed arm with what the model learnt under its former id; everything else is the model's.
"""

from __future__ import annotations

import dataclasses

__all__ = ["RenamedArms", "renamed_for", "renaming_note"]


def renamed_for(model, catalog) -> dict[str, str]:
    """``learnt id -> id in force`` of the arms ``catalog`` renamed from an id ``model``
    learnt (and no longer offers under that id)."""
    learnt = {str(arm) for arm in model.treatment_arms}
    return {
        old: new
        for old, new in catalog.renames.items()
        if old in learnt and new not in learnt and old not in catalog.arm_ids
    }


def renaming_note(renames: dict[str, str], version: str) -> str | None:
    """What the card and the log say of the arms served under a new id (``None``: none)."""
    if not renames:
        return None
    pairs = ", ".join(f"{new} (formerly {old})" for old, new in renames.items())
    return (
        f"the intervention catalog in force renamed {pairs}: version {version} serves each "
        "with the effects it learnt under the former id"
    )


class RenamedArms:
    """``model`` with the treatment arms of ``renames`` (``learnt id -> id in force``) under
    their new ids: ``treatment_arms``, its own catalog's arms, :meth:`predict`,
    :meth:`explain` and :meth:`contributions`; any other attribute is the model's.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> model = NS(treatment_arms=("coaching", "balint_group"), catalog=None)
    >>> RenamedArms(model, {"balint_group": "balint"}).treatment_arms
    ('coaching', 'balint')
    """

    def __init__(self, model, renames: dict[str, str]):
        self.wrapped = model
        self.renames = dict(renames)
        self._former = {new: old for old, new in self.renames.items()}
        self.treatment_arms = self._new(model.treatment_arms)
        trained = getattr(model, "catalog", None)
        self.catalog = (
            None
            if trained is None
            else dataclasses.replace(
                trained,
                arms=tuple(
                    dataclasses.replace(arm, id=self.renames.get(arm.id, arm.id))
                    for arm in trained.arms
                ),
            )
        )

    def __getattr__(self, name):
        return getattr(self.wrapped, name)

    def _new(self, arms) -> tuple:
        return tuple(self.renames.get(arm, arm) for arm in arms)

    def predict(self, encoded, **options):
        prediction = self.wrapped.predict(encoded, **options)
        return dataclasses.replace(prediction, arms=self._new(prediction.arms))

    def explain(self, encoded, needs):
        parts = self.wrapped.explain(
            encoded, {self._former.get(arm, arm): rows for arm, rows in needs.items()}
        )
        return {self.renames.get(arm, arm): part for arm, part in parts.items()}

    def contributions(self, profiles, arm, versus=None):
        former = self._former.get
        return self.wrapped.contributions(
            profiles, former(arm, arm), versus=None if versus is None else former(versus, versus)
        )
