"""What every answer and plan says besides its figures: that individual programs complement
organisational change, what data the served model learned from, and which arms it gives one
effect for everyone (where it found no measurable benefit in personalising).

Built once per served model from :func:`recommender.model.model_facts`; a batch or a plan says
it once for all its answers.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["answer_context"]


def _training_data(facts: Mapping) -> dict:
    source, description = facts["data_source"], facts["data"]
    about = f" ({description})" if description else ""
    if source == "simulated":
        statement = (
            f"This model learned from SIMULATED data{about}. Its effects show how the "
            "method works; they are not evidence of what the program's own people gain."
        )
    elif source == "program":
        statement = f"This model learned from the program's own data{about}."
    elif source == "evidence":
        statement = (
            "This model learned from no data: its effects are published trials' figures per "
            "arm and role, cited in each arm's evidence, not what the program's own people gain."
        )
    else:
        statement = "The data this model learned from is not recorded in it."
    return {"source": source, "description": description, "statement": statement}


def answer_context(config, model=None, *, names: Mapping[str, str] | None = None) -> dict:
    """The ``context`` block of answers served with ``model`` (None: no model is loaded).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> model = SimpleNamespace(metadata={"data": "simulated: scenario default",
    ...                                   "one_effect_arms": ["peer_group"]},
    ...                         treatment_arms=("coaching", "peer_group"))
    >>> config = SimpleNamespace(organisational_change="Programs complement change.")
    >>> context = answer_context(config, model, names={"peer_group": "Peer groups"})
    >>> context["training_data"]["source"], context["one_effect_for_everyone"][0]["arm"]
    ('simulated', 'peer_group')
    """
    from recommender.model import model_facts

    names = names or {}
    context = {
        "organisational_change": config.organisational_change,
        "training_data": None,
        "one_effect_for_everyone": [],
    }
    if model is None:
        return context
    facts = model_facts(model)
    context["training_data"] = _training_data(facts)
    served = {str(a) for a in getattr(model, "treatment_arms", ())}
    context["one_effect_for_everyone"] = [
        {
            "arm": arm,
            "statement": f"The model gives {names.get(arm, arm)} one effect for "
            "everyone: it found no measurable benefit in personalising it.",
        }
        for arm in facts["one_effect_arms"]
        if not served or arm in served
    ]
    return context
