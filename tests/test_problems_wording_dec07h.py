"""An entry sent where a record belongs is refused without naming a Python class.

pydantic's message for it reads "Input should be a valid dictionary or instance of
ProfileRequest": a class no client sends or can look up. The problem says an object is what is
accepted, and still names the entry's place. The service's own app in process, over the
stand-in model.
"""

import pytest

from service_fixtures import (  # noqa: F401  (fixtures)
    asgi_client,
    auth,
    linear_model,
    profile,
    service_home,
)


@pytest.mark.parametrize("entry", [5, "p-9", [1]])
def test_a_batch_entry_that_is_not_an_object_is_refused_in_the_apis_words(asgi_client, entry):
    rows = [profile(person_id="ok"), entry]
    response = asgi_client.post(
        "/recommend_batch", json={"profiles": rows}, headers=auth("program")
    )
    assert response.status_code == 200, response.text
    (error,) = response.json()["errors"]
    (problem,) = error["problems"]
    assert problem["field"] == "profiles[1]"
    assert problem["message"] == "Input should be a JSON object"
    assert "Request" not in response.text and "instance of" not in response.text


def test_a_plan_entry_that_is_not_an_object_is_refused_in_the_apis_words(asgi_client, linear_model):
    rows = [profile(person_id="ok"), 7]
    response = asgi_client.post("/allocate", json={"profiles": rows}, headers=auth("program"))
    assert response.status_code == 422, response.text
    (problem,) = response.json()["problems"]
    assert problem["field"] == "profiles[1]"
    assert "instance of" not in problem["message"] and "Request" not in response.text
