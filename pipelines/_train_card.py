"""The card stage: the facts the model card shows, rendered into a (staging) folder."""

from __future__ import annotations

from pipelines._train_cohort import Cohort, Split
from pipelines._train_evaluate import Evaluation

__all__ = ["card_facts", "card_stage"]


def card_facts(
    model,
    evaluation: Evaluation,
    split: Split,
    cohort: Cohort,
    config: dict,
    *,
    gate,
    run_id: str | None,
    git_commit: str,
    versions: dict,
    previous_champion: str | None = None,
    created: str | None = None,
    reproduction: dict | None = None,
) -> dict:
    """Every fact the model card shows (version and aliases are added at registration)."""
    from recommender.card import fairness_facts, training_card_facts

    return training_card_facts(
        model=model,
        report=evaluation.report,
        recommended=evaluation.recommended,
        secondary=evaluation.secondary,
        holdout_features=model.feature_frame(split.holdout),
        treatment_train=split.train["intervention"].astype(str),
        treatment_holdout=split.holdout["intervention"].astype(str),
        catalog=cohort.catalog,
        data={
            "source": cohort.source,
            "description": cohort.description,
            "design": cohort.design,
            "sha256": cohort.sha256,
            "propensity_logged": "propensity" in cohort.frame.columns,
            "n_rows": len(cohort.frame),
            "loop": cohort.loop,
            "small_arms": _small_arms(cohort.small_arms, model),
        },
        config=config,
        gate=gate,
        run_id=run_id,
        git_commit=git_commit,
        versions=versions,
        previous_champion=previous_champion,
        created=created,
        reproduction=reproduction,
        training_profiles=split.train,
        fairness=fairness_facts(
            model,
            split.holdout,
            evaluation.effects,
            evaluation.recommended,
            min_cell=config["card"]["min_cell"],
            random_state=config["seed"],
            lower=evaluation.effect_lower,
            upper=evaluation.effect_upper,
            alpha=config["evaluation"]["alpha"],
        ),
    )


def card_stage(facts: dict, plots: dict, folder) -> dict:
    """Render the card into ``folder`` (a staging folder before registration)."""
    from recommender.card import PLOT_CAPTIONS, write_card

    facts = dict(facts)
    facts["plots"] = {name: {"caption": PLOT_CAPTIONS.get(name, name)} for name in plots}
    return write_card(facts, folder, plots=plots)


def _small_arms(small_arms: dict | None, model) -> dict | None:
    """A file's small arms for the card, each carried one with its citations per role."""
    if not small_arms:
        return small_arms
    sources = (getattr(model, "metadata", None) or {}).get("arm_sources") or {}
    carried = [
        {**c, "citations": (sources.get(c["arm"]) or {}).get("citations") or {}}
        for c in small_arms.get("carried_arms") or []
    ]
    return {**small_arms, "carried_arms": carried}
