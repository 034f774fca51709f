"""``/allocate`` and ``recommender allocate`` plan the same cohort alike, and refuse the same
options alike: both plan on the model's full-precision effects through
:func:`recommender.policy.plan_allocation` (the service used to plan on the three decimals its
answers show, so a near tie could be planned otherwise), and both check every option by name
before anything is scored (:func:`recommender.policy.check_plan_options`)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from service_fixtures import (  # noqa: F401  (fixtures)
    LinearModel,
    asgi_client,
    auth,
    profile,
    service_home,
)

# Mindfulness helps 0.0003 EE points more than coaching, for everyone: apart at full
# precision, a tie at the three decimals the answers show.
NEAR_TIE = {"coaching": -2.0001, "mindfulness": -2.0004}


@pytest.fixture
def linear_model():
    return LinearModel(base=NEAR_TIE, weights={}, half_width={arm: 1.0 for arm in NEAR_TIE})


def cohort() -> list[dict]:
    return [profile(person_id=f"p{i}", role="physician") for i in range(3)]


def cli_plan(model, rows, tmp_path, monkeypatch, **options) -> pd.DataFrame:
    """``recommender allocate``'s planning (pipelines.allocate.plan_cohort) over ``model``."""
    import recommender.registry as registry
    from pipelines.allocate import plan_cohort

    monkeypatch.setattr(
        registry, "resolve_model", lambda name: SimpleNamespace(uri="models:/stand-in", version="7")
    )
    monkeypatch.setattr(registry, "load_model", lambda uri: model)
    data, out = tmp_path / "cohort.csv", tmp_path / "plan.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    plan_cohort("champion", data, out, **options)
    return pd.read_csv(out)


def test_a_near_tie_is_planned_alike_by_the_service_and_the_cli(
    asgi_client, linear_model, tmp_path, monkeypatch
):
    rows = cohort()
    served = asgi_client.post("/allocate", json={"profiles": rows}, headers=auth("program"))
    assert served.status_code == 200, served.text
    assignments = served.json()["assignments"]
    planned = cli_plan(linear_model, rows, tmp_path, monkeypatch)
    assert [a["allocated"] for a in assignments] == planned["allocated"].tolist()
    assert [a["recommended"] for a in assignments] == planned["recommended"].tolist()
    assert planned["allocated"].tolist() == ["mindfulness"] * 3  # the better arm, however close
    # the answers still show three decimals
    assert {a["ee_effect"] for a in assignments} == {-2.0}


@pytest.mark.parametrize(
    "options, field, accepted",
    [
        ({"capacity": {"coaching": 1_000_001}}, "capacity.coaching", "at most 1,000,000"),
        ({"capacity": {"peer_group": 3}}, "capacity.peer_group", "at least 6"),
        ({"capacity": {"yoga": 3}}, "capacity.yoga", "an intervention of catalog"),
        ({"floors": {"surgeon": 0.2}}, "floors.surgeon", "a role: physician"),
    ],
)
def test_a_bad_option_is_refused_by_name_before_anything_is_scored_by_both(
    asgi_client, linear_model, tmp_path, monkeypatch, options, field, accepted
):
    from recommender.errors import InputError

    rows = cohort()
    served = asgi_client.post(
        "/allocate", json={"profiles": rows, **options}, headers=auth("program")
    )
    assert served.status_code == 422, served.text
    refusal = served.json()
    assert refusal["error"].startswith(f"{field}: ")  # not "no plan was found"
    (problem,) = refusal["problems"]
    assert problem["field"] == field and accepted in problem["accepted"]
    assert problem["value"] is not None
    with pytest.raises(InputError) as refused:
        cli_plan(linear_model, rows, tmp_path, monkeypatch, **options)
    assert [p["field"] for p in refused.value.problems] == [field]
    assert linear_model.calls == []  # neither scored the cohort
