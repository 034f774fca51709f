"""The sections of the model card and the standing text that does not depend on a run.

The order follows Mitchell et al. (2019), "Model Cards for Model Reporting", the Hugging Face
model card template, and the questions a health-system auditor asks first (what is it for, what
must it never be used for, who may it fail, and whom to tell).
"""

from __future__ import annotations

__all__ = ["SECTIONS", "DEFAULT_TEXT", "section_ids"]

SECTIONS: tuple[tuple[str, str], ...] = (
    ("model-details", "Model details and lineage"),
    ("intended-use", "Intended use and users"),
    ("out-of-scope", "Out-of-scope uses"),
    ("training-data", "Training data"),
    ("evaluation", "Evaluation"),
    ("subgroups", "Subgroups"),
    ("fairness", "Fairness: groups, features and protected attributes"),
    ("recommendation-mix", "Recommendation mix"),
    ("policy-summary", "Policy summary"),
    ("evidence", "Evidence behind each intervention"),
    ("ethics", "Ethical considerations"),
    ("caveats", "Caveats and recommendations"),
    ("reporting", "How to report a problem"),
)


def section_ids() -> list[str]:
    """The HTML ids of the card's sections, in order."""
    return [sid for sid, _ in SECTIONS]


DEFAULT_TEXT: dict = {
    "intended_use": {
        "summary": (
            "Supports a clinician-wellness program in choosing which of the interventions it "
            "can offer is expected to lower a clinician's emotional exhaustion most, with an "
            "interval and the reasons, and in allocating places across a cohort under a budget."
        ),
        "users": [
            "Wellness-program staff offering interventions to clinicians who asked for support",
            "Clinicians themselves, as one input to their own choice",
            "Program leads planning capacity, from aggregate (never individual) results",
            "Auditors and researchers reviewing how the recommendations are made",
        ],
        "uses": [
            "Ranking the offered interventions for one person who has given their burnout "
            "subscale scores voluntarily",
            "Estimating, for a cohort, how places should be allocated to reduce exhaustion most",
        ],
    },
    "out_of_scope": [
        "Diagnosis: the model does not diagnose burnout, depression or any disorder, and its "
        "output is not a clinical assessment.",
        "Performance review, promotion, hiring, scheduling or discipline of any person.",
        "Any decision an employer makes about an individual; employers see aggregates only.",
        "Crisis situations: a person at risk needs crisis resources, not a ranking. A request "
        "flagged for crisis risk (crisis_risk) is answered with crisis resources and no ranking, "
        "whatever else it holds or lacks, by the service, the scored files and the registered "
        "model alike; crisis resources are never withheld.",
        "Populations not represented in the training data (other professions, other countries "
        "or health systems, age or role groups absent from the tables below), and "
        "interventions that are not in the catalog.",
        "Mandating an intervention: the recommendation supports a voluntary choice.",
    ],
    "ethics": [
        "Burnout scores are sensitive health-adjacent data: person identifiers are "
        "pseudonymous, identifiers are hashed in logs, and no free text is stored.",
        "Subgroup tables suppress every cell with fewer than {min_cell} people so that no "
        "individual can be singled out.",
        "The Maslach Burnout Inventory is a copyrighted instrument; only subscale scores are "
        "used, never item wording.",
        "Burnout is mostly driven by work systems; individual interventions complement, and "
        "must not replace, organisational change (staffing, workload, EHR burden).",
        "Severe profiles receive a confidential referral in addition to any intervention.",
        "Recommendations can differ by role, gender, age or setting; the subgroup tables show "
        "where, so that differences can be reviewed for fairness rather than hidden.",
    ],
    "caveats": [
        "Effects are estimates with intervals; an individual's response can differ widely.",
        "A person's 90 % interval is calibrated, not guaranteed. Checked against the true "
        "effects of cohorts from other generators (docs/benchmarks.md, interval coverage), "
        "the intervals are wider than needed where an intervention's effect is the same for "
        "everyone, and on multi-arm cohorts the least certain arm can be covered less often "
        "than 90 % (about 80 % averaged over draws of such cohorts).",
        "Policy values are doubly robust estimates on held-out data, valid under the usual "
        "assumptions (no unmeasured confounding for observational data, overlap of arms).",
        "A model trained on simulated data demonstrates the method; it says nothing about real "
        "clinicians until retrained and re-evaluated on a program's own data.",
    ],
    "reporting": {
        "how": (
            "Report a wrong, harmful or surprising recommendation to the wellness program's "
            "model owner with the model version shown on this card and the request time (never "
            "the person's scores or identity in free text). The owner can roll back to the "
            'previous champion with `recommender rollback --reason "..."`; every change is '
            "recorded in the promotion log."
        ),
        "contact": "The wellness program's model owner (see the program's data-protection notice).",
    },
}
