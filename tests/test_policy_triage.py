"""Safety triage: crisis means resources only; severe profiles get a referral besides the ranking."""

import pytest

from recommender.errors import InputError
from recommender.policy import SafetyRules, triage
from recommender.service import load_serve_config

RULES = SafetyRules.from_config(
    {
        "referral_rules": [{"ee_at_least": 40, "dp_at_least": 15}, {"ee_at_least": 48}],
        "referral_notice": "confidential help",
        "crisis_notice": "call now",
        "crisis_resources": [{"name": "988 Suicide & Crisis Lifeline", "contact": "988"}],
    }
)


@pytest.mark.parametrize(
    "ee, dp, level",
    [
        (40, 15, "referral"),  # both bounds are inclusive
        (39, 30, "routine"),  # high DP alone is not enough under the first rule
        (45, 14, "routine"),
        (48, 0, "referral"),  # second rule: exhaustion near the top of the scale
        (10, 2, "routine"),
    ],
)
def test_referral_rules_hold_when_every_bound_of_any_rule_holds(ee, dp, level):
    result = triage({"ee": ee, "dp": dp, "pa": 30}, RULES)
    assert result.level == level
    assert result.rank_interventions
    assert (result.notice == "confidential help") == (level == "referral")


def test_crisis_wins_over_everything_and_forbids_a_ranking():
    for scores in ({"ee": 0, "dp": 0, "pa": 48}, {"ee": 54, "dp": 30, "pa": 0}):
        result = triage(scores, RULES, crisis_risk=True)
        assert result.level == "crisis"
        assert not result.rank_interventions
        assert result.resources[0].contact == "988"


def test_matched_rule_is_named_for_the_auditor():
    assert triage({"ee": 50, "dp": 20, "pa": 1}, RULES).matched_rule == "EE >= 40 and DP >= 15"


def test_shipped_config_has_the_us_crisis_line_and_the_severity_rule():
    config = load_serve_config()
    contacts = " ".join(r.name + r.contact for r in config.safety.crisis_resources)
    assert "988" in contacts and "Physician Support Line" in contacts
    assert triage({"ee": 40, "dp": 15, "pa": 20}, config.safety).level == "referral"
    assert triage({"ee": 30, "dp": 10, "pa": 30}, config.safety).level == "routine"


def test_shipped_crisis_resources_say_what_their_own_pages_say():
    # Checked against the lines' own pages (988 Lifeline centre FAQ, Crisis Text Line,
    # physiciansupportline.com/faq); a resource's hours, audience or confidentiality must not
    # drift into something the line does not promise.
    by_name = {r.name: r for r in load_serve_config().safety.crisis_resources}
    lifeline = by_name["988 Suicide & Crisis Lifeline (US)"]
    assert lifeline.serves is None and "24 hours" in lifeline.hours
    assert "imminent risk" in lifeline.confidentiality
    text_line = by_name["Crisis Text Line (US)"]
    assert "741741" in text_line.contact and text_line.serves is None
    # Its page names two exceptions (immediate danger; abuse of a minor), so not "only when".
    assert "only when" not in text_line.confidentiality
    assert "immediate danger" in text_line.confidentiality and "minor" in text_line.confidentiality
    support_line = by_name["Physician Support Line (US)"]
    assert support_line.serves == frozenset({"physician", "resident"})
    assert "8 am to 1 am Eastern" in support_line.hours and "1-888-409-0141" in support_line.contact


def test_every_role_is_referred_with_the_eap_limits_its_pages_name():
    # EAP confidentiality pages name three limits (imminent harm, suspected abuse of a child or
    # vulnerable adult, the law) and differ between employers; a referral must not promise more.
    referrals = load_serve_config().safety.referrals
    assert set(referrals) == {"physician", "resident", "nurse", "app"}
    for role, referral in referrals.items():
        text = referral.confidentiality
        assert "imminent risk of harm" in text and "abuse of a child" in text, role
        assert "the law requires" in text and "ask the EAP for its own" in text, role


@pytest.mark.parametrize(
    "safety, words",
    [
        ({"referral_rules": [{"ee_above": 40}]}, "unknown bound 'ee_above'"),
        ({"referral_rules": [{"ee_at_least": "high"}]}, "ee_at_least: 'high'"),
        ({"referral_rules": [], "crisis_resources": []}, "at least one resource"),
        ({"crisis_resources": [{"name": "x"}]}, "crisis_resources[0]"),
        ({"referral_notice": ""}, "referral_notice"),
        ({"colour": 1}, "unknown key(s) ['colour']"),
    ],
)
def test_config_mistakes_name_the_entry(safety, words):
    base = {
        "referral_rules": [],
        "referral_notice": "n",
        "crisis_notice": "c",
        "crisis_resources": [{"name": "988", "contact": "988"}],
    }
    with pytest.raises(InputError) as caught:
        SafetyRules.from_config({**base, **safety})
    assert words in str(caught.value)


def test_a_crisis_flag_column_pandas_wrote_with_a_blank_reads_as_its_numbers(tmp_path):
    # A 0/1 column holding one missing value is a float column in pandas, which writes it as
    # 1.0 and 0.0: such a file (score, allocate) was refused, while the same values read from
    # Parquet, or 1 and 0 as text, were taken. 2.0 and 0.5 are still refused by row.
    import pandas as pd

    from recommender.cohort import read_cohort
    from recommender.policy import crisis_flags

    pd.DataFrame({"person_id": ["a", "b", "c"], "crisis_risk": [1, None, 0]}).to_csv(
        tmp_path / "flags.csv", index=False
    )
    frame = read_cohort(tmp_path / "flags.csv")
    assert frame["crisis_risk"].tolist()[0] == "1.0"
    assert crisis_flags(frame).tolist() == [True, False, False]
    with pytest.raises(InputError, match=r"row 0: '2\.0', row 1: '0\.5'"):
        crisis_flags(pd.DataFrame({"crisis_risk": ["2.0", "0.5"]}))
