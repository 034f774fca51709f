"""The intervention catalog: default content, every malformation named, arms as configuration."""

from __future__ import annotations

import copy

import pytest
import yaml

from recommender.catalog import Catalog, load_catalog, parse_catalog
from recommender.cli import main
from recommender.cohort import validate_cohort, write_cohort
from recommender.errors import InputError
from recommender.paths import config_path
from test_cohort_helpers import ARMS, clean_cohort


@pytest.fixture(scope="module")
def raw():
    return yaml.safe_load(config_path("interventions.yaml").read_text())


def test_default_catalog_arms_and_control():
    catalog = load_catalog()
    assert isinstance(catalog, Catalog) and catalog.version
    assert catalog.arm_ids == ARMS
    assert catalog.control == "none"
    assert catalog.treatment_arms == ARMS[1:]
    assert catalog.arm("coaching").cost_per_person == 1400
    with pytest.raises(InputError, match="unknown arm 'yoga'"):
        catalog.arm("yoga")


def test_every_arm_has_description_dose_limits_and_cost_basis():
    for arm in load_catalog().arms:
        assert arm.name and arm.description and arm.format and arm.dose
        assert 1 <= arm.group_min <= arm.group_max
        assert arm.cost_per_person >= 0
        if arm.id != "none":
            assert arm.evidence and arm.cost_basis
    assert load_catalog().arm("coaching").cost_is_assumption  # the US$1,400 figure is unconfirmed


def _evidence(arm_id, start):
    return next(e for e in load_catalog().arm(arm_id).evidence if e.citation.startswith(start))


@pytest.mark.parametrize(
    "arm_id, citation, effect_points, value",
    [
        ("coaching", "Dyrbye", -6.7, -6.7),
        ("coaching", "Collett", -3.5, -0.37),
        ("mindfulness", "Collett G et al. 2025", -8.6, -0.90),
        ("mindfulness", "Wang", None, -4.27),
        ("mindfulness", "Fendel", -2.5, -0.26),
        ("peer_group", "West CP et al. 2021", None, -12.7),
        ("peer_group", "West CP et al. 2014", None, -15.5),
        ("peer_group", "West CP et al. 2016", None, -2.65),
        ("resilience_training", "Sood", None, -7.6),
        ("resilience_training", "Spilg", None, None),
        ("resilience_training", "BMC Medical Education", -2.4, -0.25),
        # The reported between-group t statistic for EE (significant; not a mean difference).
        ("balint_group", "Huang L", None, -2.662),
    ],
)
def test_evidence_carries_the_reported_and_converted_figures(
    arm_id, citation, effect_points, value
):
    evidence = _evidence(arm_id, citation)
    assert evidence.effect_points == effect_points and evidence.value == value
    assert evidence.population and evidence.outcome and evidence.effect and evidence.certainty


def test_eligible_arms_by_role():
    catalog = load_catalog()
    nurse = {"role": "nurse", "specialty": "other", "years_in_practice": 4}
    physician = {"role": "physician", "specialty": "surgery", "years_in_practice": 12}
    assert catalog.eligible_arms(nurse) == ["none", "mindfulness", "resilience_training"]
    assert catalog.eligible_arms(physician) == list(ARMS)
    assert "balint_group" not in catalog.eligible_arms({**physician, "role": "app"})


def test_eligibility_by_specialty_and_years(raw, tmp_path):
    data = copy.deepcopy(raw)
    data["arms"][1]["eligibility"] = {
        "roles": ["physician"],
        "specialties": ["primary_care"],
        "min_years_in_practice": 5,
        "max_years_in_practice": 30,
        "exclusions": [
            {
                "excludes": excluded,
                "reason": "as in the coaching trial",
                "source": "Dyrbye 2019",
                "assumption": False,
            }
            for excluded in (
                "role resident",
                "role nurse",
                "role app",
                "specialties",
                "min_years_in_practice",
                "max_years_in_practice",
            )
        ],
    }
    catalog = parse_catalog(data)
    person = {"role": "physician", "specialty": "primary_care", "years_in_practice": 5}
    assert "coaching" in catalog.eligible_arms(person)
    assert "coaching" not in catalog.eligible_arms({**person, "years_in_practice": 30.5})
    assert "coaching" not in catalog.eligible_arms({**person, "specialty": "surgery"})
    with pytest.raises(InputError, match="profile has no 'years_in_practice'"):
        catalog.eligible_arms({"role": "physician", "specialty": "primary_care"})
    reasons = catalog.arm("coaching").eligibility.reasons_against({**person, "role": "nurse"})
    assert reasons == ["role 'nurse' not among physician"]


def _arm(data, arm_id):
    return next(a for a in data["arms"] if a["id"] == arm_id)


def _set(path, value):
    """A mutation of the parsed YAML; a path starting with an arm id starts at that arm."""

    def mutate(data):
        keys = list(path)
        target = _arm(data, keys.pop(0)) if keys[0] in ARMS else data
        for key in keys[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return mutate


_DELETE = object()

# (mutation, entry named, field named, rule)
MALFORMATIONS = [
    (
        _set(["coaching", "cost_per_person"], _DELETE),
        "arms[1] (coaching)",
        "cost_per_person",
        "missing field",
    ),
    (
        _set(["coaching", "cost_per_person"], -5),
        "arms[1] (coaching)",
        "cost_per_person",
        "negative cost",
    ),
    (
        _set(["coaching", "cost_per_person"], "cheap"),
        "arms[1] (coaching)",
        "cost_per_person",
        "wrong type",
    ),
    (
        _set(["mindfulness", "group_min"], 30),
        "arms[2] (mindfulness)",
        "group_max",
        "smaller than group_min",
    ),
    (_set(["mindfulness", "group_min"], 0), "arms[2] (mindfulness)", "group_min", "too small"),
    (_set(["mindfulness", "group_max"], 2.5), "arms[2] (mindfulness)", "group_max", "wrong type"),
    (_set(["peer_group", "capacity"], 0), "arms[3] (peer_group)", "capacity", "too small"),
    (_set(["peer_group", "capacity"], True), "arms[3] (peer_group)", "capacity", "wrong type"),
    (_set(["peer_group", "name"], ""), "arms[3] (peer_group)", "name", "wrong type"),
    (
        _set(["peer_group", "cost_per_persn"], 3),
        "arms[3] (peer_group)",
        "cost_per_persn",
        "unknown field",
    ),
    (_set(["balint_group", "id"], "coaching"), "arms[5] (coaching)", "id", "duplicate id"),
    (_set(["balint_group", "id"], "Balint Group"), "arms[5] (Balint Group)", "id", "malformed id"),
    (
        _set(["balint_group", "eligibility", "roles"], ["physician", "surgeon"]),
        "arms[5] (balint_group).eligibility",
        "roles",
        "unknown role",
    ),
    (
        _set(["balint_group", "eligibility", "roles"], []),
        "arms[5] (balint_group).eligibility",
        "roles",
        "empty list",
    ),
    (
        _set(["balint_group", "eligibility", "specialties"], ["cardiology"]),
        "arms[5] (balint_group).eligibility",
        "specialties",
        "unknown specialty",
    ),
    (
        _set(["balint_group", "eligibility", "min_years_in_practice"], 80),
        "arms[5] (balint_group).eligibility",
        "min_years_in_practice",
        "out of range",
    ),
    (
        _set(["balint_group", "eligibility", "age"], 3),
        "arms[5] (balint_group).eligibility",
        "age",
        "unknown field",
    ),
    (
        _set(["coaching", "evidence", 0, "authors"], _DELETE),
        "arms[1] (coaching).evidence[0]",
        "authors",
        "missing field",
    ),
    (
        _set(["coaching", "evidence", 1, "value"], "large"),
        "arms[1] (coaching).evidence[1]",
        "value",
        "wrong type",
    ),
    (
        _set(["none", "eligibility", "roles"], ["nurse"]),
        "arms[0] (none)",
        "eligibility",
        "the control arm is restricted",
    ),
    # A capacity that cannot hold one group: the arm could never run, yet plans listed it as
    # open (a plan's own override of the same size is refused).
    (
        _set(["peer_group", "capacity"], 5),
        "arms[3] (peer_group)",
        "capacity",
        "too few places for one group",
    ),
    # Usual care is what everyone not planned into an arm gets: a cost, a capacity or groups
    # on it were shown in answers and the card but never planned with.
    (
        _set(["none", "cost_per_person"], 100),
        "arms[0] (none)",
        "cost_per_person",
        "a cost for the control arm",
    ),
    (
        _set(["none", "capacity"], 5),
        "arms[0] (none)",
        "capacity",
        "a limit on places for the control arm",
    ),
    (_set(["none", "group_max"], 8), "arms[0] (none)", "group_max", "the control arm in groups"),
    # Two arms answers and cards would show under one name (a treatment called "Usual care").
    (
        _set(["coaching", "name"], " usual  CARE"),
        "arms[1] (coaching)",
        "name",
        "the name of another arm",
    ),
    (
        _set(["mindfulness", "name"], "Balint Group"),
        "arms[5] (balint_group)",
        "name",
        "the name of another arm",
    ),
    (_set(["control"], "usual_care"), "catalog", "control", "no arm has the control id"),
    (_set(["version"], _DELETE), "catalog", "version", "missing field"),
    (_set(["version"], 2), "catalog", "version", "wrong type"),
    (_set(["arms"], []), "catalog", "arms", "empty list"),
    (_set(["arms"], "coaching"), "catalog", "arms", "wrong type"),
]


@pytest.mark.parametrize("mutate, entry, field, rule", MALFORMATIONS)
def test_each_malformation_names_entry_and_field(raw, mutate, entry, field, rule):
    data = copy.deepcopy(raw)
    mutate(data)
    with pytest.raises(InputError) as caught:
        parse_catalog(data)
    named = [(p["entry"], p["field"], p["rule"]) for p in caught.value.problems]
    assert (entry, field, rule) in named, named
    assert f"{entry}.{field}: {rule}" in str(caught.value)


def test_min_years_above_max_years_is_named(raw):
    data = copy.deepcopy(raw)
    _arm(data, "coaching")["eligibility"] = {
        "min_years_in_practice": 30,
        "max_years_in_practice": 5,
    }
    with pytest.raises(
        InputError, match=r"coaching\)\.eligibility\.min_years_in_practice: greater than max"
    ):
        parse_catalog(data)


def test_only_a_control_arm_is_refused(raw):
    data = copy.deepcopy(raw)
    data["arms"] = [data["arms"][0]]
    with pytest.raises(InputError, match="only the control arm"):
        parse_catalog(data)


def test_all_problems_are_reported_at_once(raw):
    data = copy.deepcopy(raw)
    _arm(data, "coaching")["cost_per_person"] = -1
    del _arm(data, "mindfulness")["dose"]
    _arm(data, "balint_group")["eligibility"]["roles"] = ["janitor"]
    with pytest.raises(InputError) as caught:
        parse_catalog(data)
    assert len(caught.value.problems) == 3
    assert "3 problem(s)" in str(caught.value)


def test_file_errors_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such catalog"):
        load_catalog(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("arms: [unclosed\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_catalog(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- just\n- a list\n")
    with pytest.raises(InputError, match="list.yaml: the file holds a list, not settings"):
        load_catalog(tmp_path / "list.yaml")
    # a file that is not a catalog at all reads as one long text: named, not printed back
    (tmp_path / "notes.txt").write_text("word " * 2000)
    with pytest.raises(
        InputError, match=r"notes.txt: the file holds one text \(9,999 characters\), not settings"
    ) as raised:
        load_catalog(tmp_path / "notes.txt")
    assert len(str(raised.value)) < 400


def test_an_arm_is_added_by_configuration_alone(raw, tmp_path, capsys):
    data = copy.deepcopy(raw)
    yoga = copy.deepcopy(_arm(data, "resilience_training"))
    yoga.update(id="yoga", name="Yoga", description="Weekly yoga class for staff.", evidence=[])
    data["arms"].append(yoga)
    path = tmp_path / "with_yoga.yaml"
    path.write_text(yaml.safe_dump(data))
    catalog = load_catalog(path)
    assert catalog.treatment_arms[-1] == "yoga"
    assert "yoga" in catalog.eligible_arms({"role": "nurse"})

    arms = (*ARMS, "yoga")
    # 120 rows an arm: what training needs after the split, which validate --training checks
    cohort = write_cohort(clean_cohort(n=840, arms=arms), tmp_path / "cohort.csv")
    assert main(["validate", str(cohort), "--training", "--catalog", str(path)]) == 0
    assert "yoga 120" in capsys.readouterr().out
    assert main(["validate", str(cohort), "--training"]) == 2  # default catalog has no yoga
    assert "intervention [unknown_arm]" in capsys.readouterr().out


def test_an_arm_is_removed_by_configuration_alone(raw, tmp_path):
    data = copy.deepcopy(raw)
    data["arms"] = [a for a in data["arms"] if a["id"] != "balint_group"]
    path = tmp_path / "no_balint.yaml"
    path.write_text(yaml.safe_dump(data))
    catalog = load_catalog(path)
    assert "balint_group" not in catalog.arm_ids
    report = validate_cohort(clean_cohort(), training=True, arms=catalog.arm_ids)
    assert {p.value for p in report.errors} == {"balint_group"}
    assert {p.rule for p in report.errors} == {"unknown_arm"}
