"""Day one: register a model built from the catalog's published evidence alone.

No cohort, no fit: the model is :func:`recommender.model.evidence_model`. It is gated like any
other version: when the service's log holds outcomes, the challenger and the champion are
valued on it (doubly robust, logged propensities); without a log there is nothing to compare
on, so the evidence model passes only when there is no champion yet (day one), and otherwise
stays challenger until a person promotes it (``promote --force``: its gate failed). Its card
says what it rests on.
"""

from __future__ import annotations

import functools
import re
import tempfile
from pathlib import Path

import pandas as pd

__all__ = ["run_evidence_training", "evidence_gate"]


def evidence_gate(model, catalog, config: dict):
    """The gate for a model that has no held-out data of its own (see the module notes): the
    one gate on the service's log when it can value the models, else the day-one rule."""
    from pipelines._train_gate import gate_on_log
    from recommender.registry import GateDecision, PolicyValue, aliases

    decision, why = gate_on_log(model, catalog, config)
    if decision is not None:
        return decision
    alpha = config["gate"]["alpha"]
    version = aliases(config["registry"]["model_name"]).get("champion")
    no_log = why or "the service has no log with outcomes to compare on"
    nothing = PolicyValue(float("nan"), float("nan"), float("nan"), 0)
    if version is None:
        return GateDecision(
            True,
            f"there is no champion yet and {no_log}: the evidence-only model is the day-one model",
            alpha,
            nothing,
        )
    return GateDecision(
        False,
        f"champion version {version} exists and {no_log}; the evidence-only model "
        "stays challenger until a person promotes it (`recommender promote` with --force: "
        "with nothing to judge it on, its gate counts as failed)",
        alpha,
        nothing,
        champion_version=str(version),
    )


# How the card names the designs the served figures come from (the catalog's design words).
_DESIGN_WORDS = {
    "rct": "randomized trials",
    "cluster_rct": "cluster-randomized trials",
    "controlled": "controlled studies",
    "pre_post": "before-after studies",
    "meta_analysis": "meta-analyses",
    "systematic_review": "systematic reviews",
    "observational": "observational studies",
    "qualitative": "qualitative studies",
}


def _served_designs(catalog, estimates) -> str:
    """The designs of the catalog records the evidence-only model serves, in words: the card
    said "mostly single small trials" while every figure it served came from a meta-analysis."""
    served = {(e.arm, e.citation, e.effect) for e in estimates}
    designs = sorted(
        {
            item.design
            for arm in catalog.arms
            for item in arm.evidence
            if (arm.id, str(item.citation), item.effect_points) in served
        }
    )
    return " and ".join(_DESIGN_WORDS.get(d, d) for d in designs) or "no study"


def evidence_card_facts(
    model,
    catalog,
    config,
    *,
    gate,
    run_id,
    git_commit,
    versions,
    previous_champion,
    created,
    reproduction=None,
) -> dict:
    """Every fact of the evidence-only model's card (``reproduction``: what retrains it, as
    :func:`pipelines._train_lineage.reproduction` gives it; its training-data section shows
    the command, the digests and the config, as a fitted model's card does)."""
    from recommender.card import DEFAULT_TEXT, evidence_facts, json_safe
    from recommender.cohort import CATEGORIES
    from recommender.model import no_evidence_for_role, roles_without_evidence

    estimates = model.outcome_models[model.primary].estimates
    rows = [
        [
            e.arm,
            e.role,
            e.effect,
            e.lower,
            e.upper,
            e.citation,
            # which of a study's findings the figure is (a review reports several, one per
            # group of roles), and how certain: the citation alone sends a reader to the wrong one
            *_population_and_certainty(catalog, e),
            "yes" if e.specific_to_arm else "no (pooled across arms)",
            _conversion(catalog, e),
        ]
        for e in estimates
    ]
    statement = (
        "Built from the catalog's published evidence alone: per arm and role, the "
        "most precise published effect on emotional exhaustion with its 95 % interval, in EE "
        "points as the catalog converts it (a standardized difference times an assumed SD of "
        "EE; the evidence section gives each conversion). "
        "Nothing is personalised beyond role, and no data of this program were used."
    )
    uncovered = [
        f"{arm} for {role}"
        for arm in model.treatment_arms
        for role in CATEGORIES["role"]
        if not any(e.arm == arm and e.role == role for e in estimates)
    ]
    # A role no finding concerns is said in words, with what its people still get.
    unranked = [
        no_evidence_for_role(role) + " A severe profile still gets the confidential referral "
        "and a request flagged for crisis risk the crisis resources, as in every role."
        for role in roles_without_evidence(model.metadata)
    ]
    no_data = "This model was built with no data of this program"
    features = ", ".join(model.feature_names)
    return json_safe(
        {
            "schema_version": 1,
            "model": {
                "description": (
                    "Not fitted to any data: for each intervention and role it takes the "
                    "published effect on emotional exhaustion, with its interval, from the "
                    "intervention catalog's evidence (in EE points, a standardized difference "
                    "converted with an assumed SD), and recommends among the offered "
                    "interventions the one with the largest published benefit for the "
                    "person's role. It estimates emotional exhaustion only, and its only "
                    f"input is the person's {features}."
                ),
                "name": config["registry"]["model_name"],
                "version": None,
                "aliases": [],
                "created": created,
                "run_id": run_id,
                "experiment": config["registry"]["experiment"],
                "git_commit": git_commit,
                "data_sha256": None,
                "catalog_version": model.catalog_version,
                "learners": {"ee": "published evidence (per arm and role)"},
                "seed": config["seed"],
                "previous_champion": previous_champion,
                "gate": gate.to_dict(),
                "package_versions": versions,
            },
            "training_data": {
                "source": "evidence",
                "description": f"the evidence of intervention catalog "
                f"{catalog.version}; no program data",
                "design": "published trials and reviews",
                "n_rows": 0,
                "outcomes": "ee (difference from usual care, EE points)",
                "reproduction": reproduction,
            },
            "evaluation": {
                "alpha": config["evaluation"]["alpha"],
                "n": 0,
                "statement": statement,
                "basis": (
                    "The figures below are the published effects the model serves, not "
                    "measurements on this program's staff: there is no held-out part, so no "
                    "policy value, Qini, calibration or personalization gain could be "
                    "estimated. Intervals are the published 95 % intervals, converted like the effects."
                ),
                "no_oracle": "No oracle: no data, simulated or real, so PEHE and interval "
                "coverage cannot be measured.",
                "average_effects": {
                    "columns": [
                        "arm",
                        "role",
                        "effect",
                        "lower (95 %)",
                        "upper (95 %)",
                        "source",
                        "population of the finding",
                        "certainty",
                        "specific to the arm",
                        "in EE points by",
                    ],
                    "rows": rows,
                },
                "notes": [
                    "Effects are published differences from usual care converted to EE points "
                    "(see each item's conversion in the evidence section); intervals in the "
                    "table are the published 95 % intervals, converted alike; answers give them "
                    "at the service's interval level (each answer's interval_level), as "
                    "normal intervals of the same standard error.",
                    "Where several findings concern an arm and role, the most precise arm-specific "
                    "one is used: reviews of the same trials overlap, so pooling them would count "
                    "those trials twice.",
                    "No estimate (the arm is not ranked for that role): "
                    + (", ".join(uncovered) if uncovered else "none")
                    + ".",
                    *unranked,
                    f"Gate: {gate.reason}.",
                ],
                "plots": [],
            },
            "subgroups": {
                "min_cell": config["card"]["min_cell"],
                "table": None,
                "why": f"{no_data}, so there are no people to break its value down by "
                "group. Its effects differ by role only (the evaluation section).",
            },
            "fairness": {
                "why": f"{no_data}, so there are no people to compare groups of. The model's "
                f"only feature is {features}: gender, age and setting never change its "
                "answer or appear among its reasons. Who may receive each intervention is "
                "the catalog's eligibility (the evidence section and docs/evidence.md).",
            },
            "recommendation_mix": {
                "why": f"{no_data}, so there are no held-out people to count recommendations "
                "of. For each role it recommends the offered intervention with the largest "
                "published benefit in the table of the evaluation section."
            },
            "policy_summary": {
                "why": f"{no_data}; its whole policy is the table of effects per role in the "
                "evaluation section."
            },
            "evidence": evidence_facts(catalog, list(model.arms)),
            "caveats": [
                statement,
                *unranked,
                "Published effects were measured on other programs' staff (the figures this "
                f"model serves come from {_served_designs(catalog, estimates)}; each one's "
                "certainty is in the evidence section); they may not transfer to this program "
                "(the simulator's `local` scenario asks what happens then).",
                DEFAULT_TEXT["caveats"][0],  # an individual's response can differ widely
                "Nothing in this card was measured on this program's clinicians: retrain from "
                "the program's own log (`recommender train --from-log`) once follow-up "
                "scores are in, and judge that model on the log.",
            ],
        }
    )


# Sections of the training config an evidence-only run does not read: it draws no data,
# splits nothing, fits no learner and has the catalog's one outcome (EE). Logged as the run's
# params they would say, in MLflow's compare view, that this run used (say) a T-learner.
_UNUSED_SETTINGS = ("data", "split", "learner", "outcomes", "primary", "exclude_features")


def _conversion(catalog, estimate) -> str:
    """How the finding behind ``estimate`` became EE points, as its catalog entry says
    (``SMD x 9.5 (assumed SD of EE, see the header)``): beside the study's name, a figure
    that rests on the assumed SD says so, not only in the evidence section."""
    item = _finding(catalog, estimate)
    if item is None:
        return "as published"
    # the figures are in the row already: "SMD x 9.5 (...) = -3.5 (-5.9 to -1.2)."
    said = re.sub(r" = [-+]?[\d.]+ \([^)]*\)", "", str(item.conversion or ""))
    return said.strip().rstrip(".") or "as published"


def _finding(catalog, estimate):
    """The catalog's evidence record behind ``estimate`` (its study and figure), or None."""
    for item in catalog.arm(estimate.arm).evidence:
        if str(item.citation) == estimate.citation and item.effect_points == estimate.effect:
            return item
    return None


def _population_and_certainty(catalog, estimate) -> tuple[str, str]:
    """Whom the finding behind ``estimate`` concerns and its certainty, as the catalog gives
    them (the evidence section quotes the whole record)."""
    item = _finding(catalog, estimate)
    if item is None:
        return "not in the catalog", "not in the catalog"
    return str(item.population), str(item.certainty).rstrip(".")


def _used_settings(settings: dict) -> dict:
    """The training config without the sections an evidence-only run does not read.

    The run's params are these; its ``config/train.yaml`` artifact keeps the config as given,
    so the run can be repeated from it.
    """
    return {k: v for k, v in settings.items() if k not in _UNUSED_SETTINGS}


def run_evidence_training(settings: dict, *, progress, safety, reason: str | None = None):
    """Build, gate, card, log and register the evidence-only model; all or nothing."""
    from pipelines._train_card import card_stage
    from pipelines._train_lineage import _git_commit, _package_versions, reproduction
    from pipelines._train_log import example_profiles
    from pipelines._train_register import regated_note, register_stage
    from pipelines.train import TrainingResult
    from pipelines._train_cohort import training_catalog
    from recommender.model import evidence_model
    from recommender.registry import TrainingRun, aliases as current_aliases

    catalog = training_catalog(settings)
    with progress.stage("load", "reading the catalog's published evidence"):
        # min_cell: the smallest group its card reports on, and so its plans (model_min_cell)
        model = evidence_model(
            catalog,
            metadata={"seed": settings["seed"], "min_cell": settings["card"]["min_cell"]},
        )
    name = settings["registry"]["model_name"]
    git_commit, versions = _git_commit(), _package_versions()
    registration = None
    try:
        with (
            TrainingRun(
                experiment=settings["registry"]["experiment"],
                run_name=f"evidence-{catalog.version}",
                tags={"pipeline": "train", "data.source": "evidence"},
                model_name=name,
                description=(
                    f"Evidence-only model of intervention catalog {catalog.version}: the "
                    "published effects on EE per arm and role, no data of this program and no "
                    f"learner fitted. Why: {reason or 'not given (--reason)'}."
                ),
            ) as run,
            tempfile.TemporaryDirectory(prefix="recommender-train-") as workspace,
        ):
            previous_champion = current_aliases(name).get("champion")
            with progress.stage("gate", "valuing against the champion on the service's log"):
                gate = evidence_gate(model, catalog, settings)
            progress.note(("passes: " if gate.passed else "stays challenger: ") + gate.reason)
            # the card shows what the run's tags record: one reproduction for both
            retrain = reproduction(settings, None)
            with progress.stage("card", "rendering the model card (staged)"):
                created = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M:%S")
                facts_for = functools.partial(
                    evidence_card_facts,
                    model,
                    catalog,
                    settings,
                    run_id=run.run_id,
                    git_commit=git_commit,
                    versions=versions,
                    created=created,
                    reproduction=retrain,
                )
                facts = facts_for(gate=gate, previous_champion=previous_champion)
                card_stage(facts, {}, Path(workspace) / "card")
            progress.note(facts["evaluation"]["statement"])
            with progress.stage("log", "logging the evidence model to MLflow"):
                run.log_params(
                    {
                        "config": _used_settings(settings),
                        "data.source": "evidence",
                        "catalog.version": catalog.version,
                        "learner.chosen": {"ee": "evidence"},
                    }
                )
                run.set_tags(
                    {
                        "git_commit": git_commit,
                        "catalog.version": catalog.version,
                        **{f"version.{k}": v for k, v in versions.items()},
                        "config.sha256": retrain["config_sha256"],
                        "catalog.sha256": retrain["catalog_sha256"],
                        "reproduce.command": retrain["command"],
                        "reproduce.how": retrain["how"],
                    }
                )
                run.log_text(retrain["config_yaml"], retrain["config_artifact"])
                model_info = run.log_model(model, example_profiles(), safety=safety)
            with progress.stage("register", f"registering a version of {name}"):
                registration = register_stage(
                    run,
                    model_info,
                    gate=gate,
                    card_facts_=facts,
                    plots={},
                    reason=reason or f"evidence-only model of catalog {catalog.version}",
                    regate=lambda: evidence_gate(model, catalog, settings),
                    facts_for=facts_for,
                )
            regated_note(gate, registration, progress)
    except Exception as error:
        if registration is not None:
            error.registered_version = registration.version
        raise
    return TrainingResult(
        run_id=run.run_id,
        version=registration.version,
        aliases=registration.aliases,
        gate=registration.gate,
        model=model,
        report=_EvidenceReport(facts["evaluation"]["statement"]),
        card_folder=getattr(registration, "card_folder", None),
        config=settings,
        data_sha256="",
    )


class _EvidenceReport:
    """The report of an evidence-only run: its statement (no evaluation on data)."""

    def __init__(self, statement: str):
        self.statement = statement
