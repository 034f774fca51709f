"""A person_id whose letters mix scripts (UTS #39 "highly restrictive") is refused, naming both.

``рerson-1`` with a Cyrillic ``р`` (U+0440) looks like ``person-1`` and hashed as another
person. Refused now at every entry that applies the person_id rule, the message naming the two
scripts and the characters by code point; an id of one script, or of the mixes the profile
allows (Latin with Han and Japanese kana, with Han and Bopomofo, with Han and Hangul), is
accepted as before, and an id stored before the rule is still found (outcomes, erasures).
"""

from __future__ import annotations

import unicodedata

import pytest

from recommender.cohort import person_id_problem
from recommender.cohort._person_id import script_of
from service_fixtures import auth, profile
from service_fixtures import asgi_client, linear_model, service_home  # noqa: F401 - fixtures

LOOKALIKE = "\u0440erson-1"  # CYRILLIC SMALL LETTER ER, then Latin


@pytest.mark.parametrize(
    ("person_id", "said"),
    [
        (
            LOOKALIKE,
            "mixes Latin and Cyrillic letters: character 1 is U+0440 CYRILLIC SMALL LETTER ER "
            "(Cyrillic), among Latin letters such as character 2, U+0065 LATIN SMALL LETTER E",
        ),
        ("p\u0430ul-7", "character 2 is U+0430 CYRILLIC SMALL LETTER A (Cyrillic)"),
        ("nurse-\u03bf1", "character 7 is U+03BF GREEK SMALL LETTER OMICRON (Greek)"),
        ("Ivan-\u0418\u0432\u0430\u043d", "mixes Latin and Cyrillic letters"),
        ("\u5c71\u7530\u305f\u3050\uae40", "mixes Hiragana and Hangul letters"),  # kana + Hangul
        ("\u0561bc-1", "U+0561 ARMENIAN SMALL LETTER AYB (Armenian)"),
    ],
)
def test_an_id_mixing_scripts_is_refused_naming_both(person_id, said):
    problem = person_id_problem(person_id)
    assert problem is not None and said in problem
    assert "UTS #39" in problem
    assert person_id not in problem  # the id itself is never echoed


@pytest.mark.parametrize(
    "person_id",
    [
        "person-1",
        "Jos\u00e9 Garc\u00eda",  # Latin, accents included
        "\u0418\u0432\u0430\u043d-1",  # Cyrillic alone, digits and punctuation beside it
        "\u0391\u0392\u0393-7",  # Greek alone
        "\u5c71\u7530\u305f\u308d\u3046-T1",  # Han, Hiragana and Latin: allowed
        "\u5c71\u7530\uff79\uff9d",  # Han with halfwidth Katakana
        "\u738b\u5c0f\u660e\u3105-A",  # Han, Bopomofo and Latin
        "\uae40\ubbfc\uc900-\u91d1-A",  # Hangul, Han and Latin
        "\u00b5-12",  # MICRO SIGN: a letter of no script
        "\ufb01le-1",  # the fi ligature is Latin
        "\uff50erson",  # a fullwidth Latin letter is Latin
        "\u0645\u062d\u0645\u062f\u0640-1",  # Arabic with a tatweel (Common in Scripts.txt)
    ],
)
def test_ids_of_one_script_or_an_allowed_mix_are_accepted(person_id):
    assert person_id_problem(person_id) is None


def test_the_script_read_from_a_name_is_the_letters_own():
    # Python's unicodedata has no Script property; fontTools (a dependency of the benchmarks'
    # matplotlib) carries Scripts.txt. Every letter given a script must be given its own.
    fonttools = pytest.importorskip("fontTools.unicodedata")
    wrong = []
    for code in range(0x110000):
        character = chr(code)
        script = script_of(character)
        if script is not None:
            real = fonttools.script_name(fonttools.script(character))
            if script != real:
                wrong.append(f"U+{code:04X} {unicodedata.name(character)}: {script}, not {real}")
    assert wrong == []


def test_over_http_the_refusal_names_the_field_and_never_the_id(asgi_client):  # noqa: F811
    refused = asgi_client.post(
        "/recommend", json=profile(person_id=LOOKALIKE), headers=auth("program")
    )
    assert refused.status_code == 422, refused.text
    (problem,) = refused.json()["problems"]
    assert problem["field"] == "person_id" and "U+0440" in problem["message"]
    assert "one script" in problem["accepted"]
    assert LOOKALIKE not in refused.text
    # A crisis flag is still answered whatever the id holds.
    crisis = asgi_client.post(
        "/recommend", json={"person_id": LOOKALIKE, "crisis_risk": True}, headers=auth("program")
    )
    assert crisis.status_code == 200 and crisis.json()["safety"]["resources"]


def test_an_id_stored_before_the_rule_still_links_and_is_erased(asgi_client):  # noqa: F811
    from datetime import datetime, timezone

    from recommender.cohort import _person_id

    # Served while the rule did not exist (the release before it).
    with pytest.MonkeyPatch.context() as before_the_rule:
        before_the_rule.setattr(_person_id, "_mixed_scripts", lambda text: None)
        served = asgi_client.post(
            "/recommend", json=profile(person_id=LOOKALIKE), headers=auth("program")
        )
    assert served.status_code == 200, served.text
    assert person_id_problem(LOOKALIKE) is not None  # refused now at the front door
    outcome = {
        "person_id": LOOKALIKE,
        "measured_at": datetime.now(timezone.utc).isoformat(),
        "arm_taken": "coaching",
        "ee_followup": 20,
        "dp_followup": 7,
        "pa_followup": 38,
    }
    linked = asgi_client.post("/outcomes", json={"outcomes": [outcome]}, headers=auth("program"))
    assert linked.status_code == 200, linked.text
    erased = asgi_client.post(
        "/erasures", json={"person_ids": [LOOKALIKE]}, headers=auth("program")
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["found"] == 1 and erased.json()["outcomes_deleted"] == 1
