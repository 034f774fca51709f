"""A model seen under the ids of the catalog in force, for the arms that catalog renamed.

A model learns arms by id; a program that renames an arm (``renamed_from`` in the catalog)
would otherwise be served a new arm the model never learnt. :func:`served_under` is the one
place that decides how a model meets the catalog in force: the service, ``score``,
``batch-score`` (on every Spark worker, with the catalog shipped to it), ``allocate``,
``champions``, ``serve --check``, ``promote`` and a retraining's carry stage (an arm it cannot
learn keeps what the champion learnt under the former id) all call it. It gives
:class:`RenamedArms` when the catalog renamed an arm the model learnt: the model's predictions,
explanations, scored tables and the metadata that names arms (where an arm's figures come
from, their citations, the arms given one effect for everyone), under the new ids, so a renamed
arm is ranked, planned, scored and explained with what the model learnt under its former id;
everything else is the model's.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from collections.abc import Mapping

from recommender.model._facts import model_facts

__all__ = ["RenamedArms", "formerly", "renamed_for", "renaming_note", "served_under"]

# The metadata entries keyed by arm id (recommender.model._carried, ._evidence, ._role_support).
_ARM_KEYED = ("arm_sources", "carried_citations", "evidence_citations", "arm_rows_within_role")
# The metadata entry listing arms (recommender.model._facts); worked out from the model as
# learnt when it is not recorded (models trained before it was), so it is always under new ids.
_ARM_LISTING = "one_effect_arms"


def served_under(model, catalog, *, version: str | None = None):
    """``(served, note)``: ``model`` as it is served under ``catalog`` (the catalog in force),
    and what to say of it (``None``: nothing).

    ``served`` is ``model`` itself, or, when ``catalog`` renamed arms the model learnt, a
    :class:`RenamedArms` view that serves them under their new ids; ``note`` is then
    :func:`renaming_note`'s sentence (``version``: the model's registered version, to name it).

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> model = NS(treatment_arms=("coaching", "balint_group"), catalog=None)
    >>> catalog = NS(renames={"balint_group": "balint"}, arm_ids=("none", "coaching", "balint"))
    >>> served, note = served_under(model, catalog, version="4")
    >>> served.treatment_arms, note.split(":")[0]
    (('coaching', 'balint'), 'the intervention catalog in force renamed balint (formerly balint_group)')
    >>> served_under(model, NS(renames={}, arm_ids=()))[0] is model
    True
    """
    renames = renamed_for(model.treatment_arms, catalog)
    if not renames:
        return model, None
    return RenamedArms(model, renames), renaming_note(renames, version)


def renamed_for(learnt, catalog) -> dict[str, str]:
    """``learnt id -> id in force`` of the arms ``catalog`` renamed from one of the ``learnt``
    arms (a model's treatment arms), which it no longer offers under that id."""
    learnt = {str(arm) for arm in learnt}
    renames = getattr(catalog, "renames", None) or {}
    return {
        old: new
        for old, new in renames.items()
        if old in learnt and new not in learnt and old not in catalog.arm_ids
    }


def renaming_note(renames: Mapping[str, str], version: str | None = None) -> str | None:
    """What is said of the arms served under a new id (``None``: none): on the service's card
    and in its log, by ``score``, ``allocate``, ``champions`` and ``serve --check``."""
    if not renames:
        return None
    pairs = ", ".join(formerly(new, old) for old, new in renames.items())
    named = "the model" if version is None else f"version {version}"
    return (
        f"the intervention catalog in force renamed {pairs}: {named} serves each "
        "with the effects it learnt under the former id"
    )


def formerly(arm: str, former: str | None) -> str:
    """``arm`` named with its former id, as the renaming note names it (``former`` None: as it is).

    Examples
    --------
    >>> formerly("balint", "balint_group"), formerly("coaching", None)
    ('balint (formerly balint_group)', 'coaching')
    """
    return arm if not former or former == arm else f"{arm} (formerly {former})"


class RenamedArms:
    """``model`` with the treatment arms of ``renames`` (``learnt id -> id in force``) under
    their new ids: ``treatment_arms``, ``arms``, its own catalog's arms, the arm-keyed entries
    of its ``metadata`` and its ``one_effect_arms`` (recorded or not), :meth:`predict`,
    :meth:`predict_effect`, :meth:`explain`, :meth:`contributions`; every other method of the
    model's class (``score``, ``recommend``, ``eligibility``...) runs on this view, so reads
    them under the new ids too; any other attribute is the model's (``wrapped``: the model as
    learnt).

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> model = NS(treatment_arms=("coaching", "balint_group"), catalog=None, control="none")
    >>> RenamedArms(model, {"balint_group": "balint"}).arms
    ('none', 'coaching', 'balint')
    """

    def __init__(self, model, renames: Mapping[str, str]):
        self.wrapped = model
        self.renames = dict(renames)
        self._former = {new: old for old, new in self.renames.items()}
        self.treatment_arms = self._new(model.treatment_arms)
        self.arms = (getattr(model, "control", "none"), *self.treatment_arms)
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
        metadata = getattr(model, "metadata", None)
        self.metadata = self._renamed_metadata(metadata if isinstance(metadata, Mapping) else {})

    def __getattr__(self, name):
        # Every method of the model's class runs on this view, whatever its name (a method
        # added later included): what it reads of the arms (``treatment_arms``, ``catalog``,
        # ``predict``...) it reads under the ids in force. Properties, static and class methods
        # and data are the model's own (``compiled`` is built once, on the model).
        if not (name.startswith("__") and name.endswith("__")):
            try:
                method = inspect.getattr_static(type(self.wrapped), name)
            except AttributeError:
                method = None
            if isinstance(method, types.FunctionType):
                return types.MethodType(method, self)
        return getattr(self.wrapped, name)

    def _new(self, arms) -> tuple:
        return tuple(self.renames.get(arm, arm) for arm in arms)

    def _renamed_metadata(self, metadata: Mapping) -> dict:
        out = dict(metadata)
        for key in _ARM_KEYED:
            if isinstance(out.get(key), Mapping):
                out[key] = {self.renames.get(arm, arm): facts for arm, facts in out[key].items()}
        # Recorded or worked out from the learners (which know the former ids), as the
        # model as learnt says it: never an id the catalog in force no longer has.
        out[_ARM_LISTING] = list(self._new(model_facts(self.wrapped)[_ARM_LISTING]))
        return out

    def predict(self, encoded, **options):
        prediction = self.wrapped.predict(encoded, **options)
        return dataclasses.replace(prediction, arms=self._new(prediction.arms))

    def predict_effect(self, profiles, **options):
        return self.wrapped.predict_effect(profiles, **options).rename(columns=self.renames)

    def explain(self, encoded, needs):
        parts = self.wrapped.explain(
            encoded, {self._former.get(arm, arm): rows for arm, rows in needs.items()}
        )
        return {self.renames.get(arm, arm): part for arm, part in parts.items()}

    def contributions(self, profiles, arm, versus=None, **options):
        former = self._former.get
        return self.wrapped.contributions(
            profiles,
            former(arm, arm),
            versus=None if versus is None else former(versus, versus),
            **options,
        )
