"""Published figures the product states, pinned to what their sources report.

Each corrected fact is pinned by its value, with the source line in a comment: CI sees only the
repository, so the source documents (../shared) and the stored study pages cannot be read here.
Besides the corrections, the figures checked against their studies on 2026-12-07 are pinned so
that an edit cannot drift from the study without a test saying which.
"""

from __future__ import annotations

import math

import pytest
import yaml

from recommender.catalog import load_catalog
from recommender.paths import config_path
from recommender.simulate import STUDIES

# The conversion the catalog's header gives for standardized differences (an assumed SD of EE).
ASSUMED_EE_SD = 9.5


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def scenario():
    return yaml.safe_load(config_path("scenarios/default.yaml").read_text())


def _records(catalog):
    records = [(arm.id, e) for arm in catalog.arms for e in arm.evidence]
    return records + [(c.id, e) for c in catalog.complements for e in c.evidence]


def _one(catalog, arm_id, author, roles=None):
    found = [
        e
        for e in catalog.arm(arm_id).evidence
        if (e.authors or "").startswith(author) and (roles is None or e.roles == roles)
    ]
    assert len(found) == 1, (arm_id, author, roles)
    return found[0]


def test_physician_gender_mix_is_the_aamc_figure():
    # AAMC 2022 Physician Specialty Data Report: women were 37.1 % of active physicians in
    # 2021 (the scenario said "about 38 %" and drew 38 %).
    physician = yaml.safe_load(config_path("scenarios/default.yaml").read_text())["population"][
        "gender"
    ]["physician"]
    assert physician["source"] == "AAMC 2022"
    assert physician["value"]["female"] == 0.37 and "37.1 %" in physician["note"]
    assert "38 %" not in physician["note"]
    assert math.isclose(sum(physician["value"].values()), 1.0)


def test_the_effect_bound_is_the_largest_single_trial_not_the_largest_published(catalog, scenario):
    # The bound was said to be "the largest mean EE difference from usual care published for
    # an individual intervention among the catalog's studies"; the catalog's own Collett 2025
    # nurse mindfulness record is larger (SMD -0.90, and "more than 9" EE units in its
    # supplement as a news summary gives it). What is true: no single trial in the catalog
    # reports a larger mean EE difference in MBI points than Dyrbye 2019's net -6.7.
    bound = scenario["effect_modifiers"]["effect_bound"]["ee"]
    assert bound["value"] == 6.7 and bound["source"] == "Dyrbye 2019"
    assert "single trial" in bound["note"] and "published for an" not in bound["note"]
    trials = [e for _, e in _records(catalog) if e.design == "rct" and e.effect_points]
    assert max(abs(e.effect_points) for e in trials) == bound["value"]
    pooled = [e for _, e in _records(catalog) if e.design == "meta_analysis" and e.effect_points]
    assert max(abs(e.effect_points) for e in pooled) > bound["value"]


def test_the_resident_meta_analysis_says_what_its_abstract_says(catalog):
    # PMC11523819 abstract: "... with a comparator group ..., in any language and publication
    # date". It names no countries; the catalog said "any country".
    record = _one(catalog, "coaching", "", roles=("resident",))
    assert record.pmid == "39478552" and record.doi == "10.1186/s12909-024-06195-3"
    assert "any language and publication date" in record.setting
    assert "country" not in record.setting
    assert (record.value, record.ci) == (-0.25, (-0.40, -0.11))
    assert record.specific_to_arm is False


def test_a_reading_of_wang_2023_is_not_presented_as_raw_point_trials():
    # Wang 2023 labels its figures SMDs ("SMD = -4.27"); reading them as MBI points is the
    # simulator's assumption, and a calibration row must say so rather than call them
    # "raw-point nurse trials".
    for study in STUDIES:
        assert "raw-point" not in study.source, study.source
    row = next(s for s in STUDIES if s.quantity == "EE SMD, nurses minus physicians")
    assert "Wang 2023" in row.source and "read as MBI points" in row.source
    assert f"{-4.27 / ASSUMED_EE_SD:.2f}" in row.source  # -0.45


def test_every_sd_conversion_is_the_arithmetic_it_states(catalog):
    # "SMD x 9.5 (assumed SD of EE, see the header) = ..." must be that product, rounded to
    # one decimal, for the figure and both ends of its interval.
    checked = 0
    for arm_id, e in _records(catalog):
        if not e.conversion or "x 9.5" not in e.conversion:
            continue
        expected = e.value * ASSUMED_EE_SD
        assert math.isclose(e.effect_points, expected, abs_tol=0.051), (arm_id, e.citation)
        for end, converted in zip(e.ci, e.effect_points_ci):
            assert math.isclose(converted, end * ASSUMED_EE_SD, abs_tol=0.051), (arm_id, end)
        checked += 1
    assert checked >= 6


def test_dyrbye_2019_figures_and_the_interval_computed_from_them(catalog):
    # JAMA Intern Med 2019;179(10):1406-1414 abstract: EE "decreased by a mean (SD) of 5.2
    # (8.7) points in the intervention group compared with an increase of 1.5 (7.7) points in
    # the control group"; high EE -19.5 % vs +9.8 % (-29.3 %, 95 % CI -34.0 to -24.6); overall
    # burnout -17.1 % vs +4.9 % (-22.0 %, -25.2 to -18.7); 88 physicians, 44 per arm
    # (Cochrane CD002892 extraction).
    dyrbye = _one(catalog, "coaching", "Dyrbye")
    assert dyrbye.value == dyrbye.effect_points == round(-5.2 - 1.5, 1)
    for figure in ("5.2 (8.7)", "1.5 (7.7)", "-29.3%", "-34.0% to -24.6%", "-22.0%"):
        assert figure in dyrbye.effect
    half = 1.96 * math.sqrt(8.7**2 / 44 + 7.7**2 / 44)
    assert dyrbye.effect_points_ci == (round(-6.7 - half, 1), round(-6.7 + half, 1))
    assert "ours, not the study's" in dyrbye.conversion
    control = _one(catalog, "none", "Dyrbye")
    assert control.value == 1.5 and control.effect_kind == "within_group"


@pytest.mark.parametrize(
    ("arm_id", "roles", "value", "ci", "grade"),
    [
        # Collett 2025 (Ann Intern Med): the SMDs and GRADE ratings as ACP Internist Weekly,
        # HealthDay and ACC give the abstract; the coaching CI as ACP gives it. The other CIs
        # are the catalog's (from the abstract, PubMed 41248499), not re-read on 2026-12-07.
        ("coaching", ("physician",), -0.37, (-0.62, -0.13), "low"),
        ("mindfulness", ("nurse",), -0.90, (-1.46, -0.34), "low"),
        ("mindfulness", ("physician",), -0.46, (-1.28, 0.35), "very_low"),
        ("mindfulness", ("physician", "nurse"), -0.40, (-0.65, -0.16), "low"),
    ],
)
def test_collett_2025_figures_and_grades(catalog, arm_id, roles, value, ci, grade):
    record = _one(catalog, arm_id, "Collett", roles=roles)
    assert (record.value, record.ci, record.grade) == (value, ci, grade)
    assert record.design == "meta_analysis" and record.effect_kind == "between_group"


def test_other_published_figures_checked_against_their_abstracts(catalog):
    # Fendel 2021 Acad Med: between-group SMD -0.26 (95 % CI -0.50, -0.03), 25 studies, 925
    # physicians.
    fendel = _one(catalog, "mindfulness", "Fendel")
    assert (fendel.value, fendel.ci) == (-0.26, (-0.50, -0.03)) and "925" in fendel.population
    # Wang 2023 Front Psychiatry: "emotional exhaustion (SMD = -4.27; 95% CI = -5.94 to -2.59)".
    wang = _one(catalog, "mindfulness", "Wang")
    assert (wang.value, wang.ci, wang.effect_points) == (-4.27, (-5.94, -2.59), None)
    # West 2021 Mayo Clin Proc: overall burnout -12.7 % (31/62 to 19/51) vs +1.9 % (25/61 to
    # 24/56) at 12 months from baseline; West 2014 JAMA Intern Med: 74 physicians, high DP
    # -15.5 % vs +0.8 % at 3 months (P = .004).
    compass = _one(catalog, "peer_group", "West CP, Dyrbye LN, Satele")
    assert compass.value == -12.7 and "31/62 to 19/51" in compass.effect
    west2014 = _one(catalog, "peer_group", "West CP, Dyrbye LN, Rabatin")
    assert west2014.value == -15.5 and "74" in west2014.population
    # West 2016 Lancet: EE 23.82 to 21.17 (2.65 points [1.67-3.64]), a pooled pre-post change.
    west2016 = _one(catalog, "peer_group", "West CP, Dyrbye LN, Erwin")
    assert (west2016.value, west2016.ci) == (-2.65, (-3.64, -1.67))
    # Sood 2011 J Gen Intern Med: PSS -5.4 +/- 8.1 vs +2.2 +/- 6.1 (p = 0.010), 40 physicians.
    sood = _one(catalog, "resilience_training", "Sood")
    assert sood.value == round(-5.4 - 2.2, 1) and "40" in sood.population
    # Huang 2020 (ICU nurses) NPBR: MBI 58.33 +/- 7.38 vs 70.50 +/- 7.01 after training.
    nurses = _one(catalog, "balint_group", "Huang H")
    assert nurses.value == round(58.33 - 70.50, 2) and "152" in nurses.population


def test_complement_and_workload_figures_and_identifiers(catalog):
    records = {(c.id, e.authors.split(",")[0]): e for c in catalog.complements for e in c.evidence}
    # Busireddy 2017 J Grad Med Educ: work hour reductions, EE mean difference -2.73 (95 % CI
    # -4.12 to -1.34), 19 studies (6 RCTs, 13 cohort), 2030 residents.
    busireddy = records[("workload_and_scheduling", "Busireddy KR")]
    assert (busireddy.value, busireddy.ci) == (-2.73, (-4.12, -1.34))
    assert busireddy.effect_kind == "within_group" and busireddy.effect_points is None
    # Panagioti 2017 JAMA Intern Med (PubMed 27918798): organization-directed SMD -0.45 (95 %
    # CI -0.62 to -0.28); all interventions -0.29 (-0.42 to -0.16).
    panagioti = records[("workload_and_scheduling", "Panagioti M")]
    assert (panagioti.value, panagioti.ci, panagioti.pmid) == (-0.45, (-0.62, -0.28), "27918798")
    # Dawson 2021 BMC Health Serv Res 21:392 (PubMed 33906664).
    dawson = records[("schwartz_rounds", "Dawson J")]
    assert dawson.pmid == "33906664" and dawson.doi == "10.1186/s12913-021-06413-4"
    # Shanafelt 2015 Mayo Clin Proc: 2813 of 3896 (72.2 %); -3.3 % burnout per leadership point.
    leadership = records[("leadership", "Shanafelt TD")]
    assert leadership.value == -3.3 and "2813 of 3896" in leadership.population
    assert leadership.effect_kind == "association" and leadership.effect_points is None


def _evidence_card(catalog):
    from types import SimpleNamespace

    from pipelines._train_evidence import evidence_card_facts
    from recommender.model import evidence_model

    gate = SimpleNamespace(reason="no champion yet", passed=True, to_dict=lambda: {})
    config = {
        "registry": {"model_name": "m", "experiment": "e"},
        "seed": 0,
        "evaluation": {"alpha": 0.1},
        "card": {"min_cell": 11},
    }
    return evidence_card_facts(
        evidence_model(catalog),
        catalog,
        config,
        gate=gate,
        run_id="r",
        git_commit=None,
        versions={},
        previous_champion=None,
        created="2026-12-07T00:00:00Z",
    )


def test_the_evidence_only_card_says_what_its_figures_are(catalog):
    # Every figure the evidence-only model serves is a standardized difference from a
    # meta-analysis times the catalog's assumed SD of EE (Collett 2025, Fendel 2021, the 2024
    # resident meta-analysis). The card called them published EE effects from "mostly single
    # small trials"; it now names the designs served and the conversion as an assumption.
    from recommender.model._evidence import evidence_estimates

    served = {(e.arm, e.citation) for e in evidence_estimates(catalog)}
    records = [
        item
        for arm in catalog.arms
        for item in arm.evidence
        if (arm.id, str(item.citation)) in served and item.effect_points is not None
    ]
    assert records and {r.design for r in records} == {"meta_analysis"}
    assert all("assumed SD" in r.conversion for r in records)

    facts = _evidence_card(catalog)
    caveats = " ".join(facts["caveats"])
    assert "single small trials" not in caveats
    assert "come from meta-analyses" in caveats
    assert "assumed SD" in facts["model"]["description"]
    assert "assumed SD" in facts["evaluation"]["statement"]


def test_the_no_evidence_note_for_apps_does_not_deny_the_complements_reviews(catalog):
    # Taylor 2018 (BMJ Open, "any healthcare staff"), Dawson 2021 and Kang 2024 ("any type of
    # clinician") concern APPs among others; what no record gives is a ranked arm's EE figure.
    from recommender.model import no_evidence_for_role

    complements = [e for c in catalog.complements for e in c.evidence if "app" in e.roles]
    arms = [e for a in catalog.arms for e in a.evidence if "app" in e.roles and e.effect_points]
    assert complements and not arms
    note = no_evidence_for_role("app")
    assert "for any intervention this model ranks" in note
    assert "measures it does not rank may include them" in note


def test_the_local_scenario_halves_the_defaults_coaching_not_a_published_effect(scenario):
    # local.yaml halves the default's coaching reference effects (physicians -9.0 before the
    # multipliers and the -6.7 bound; nurses and APPs are assumptions), which are not "the
    # published effect" its description named.
    local = yaml.safe_load(config_path("scenarios/local.yaml").read_text())
    assert "half the default's effect" in local["description"]
    assert "half the published effect" not in local["description"]
    default = scenario["effects"]["coaching"]["by_role"]
    assert default["physician"]["ee"]["value"] == -9.0 and "assumption" in default["nurse"]
