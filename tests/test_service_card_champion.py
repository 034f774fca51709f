"""The served card says how its version became the champion, as the registry recorded it.

The card is written when a version is trained: a version that failed the promotion gate says
so, and "stays challenger". Promoted later by a person with ``promote --force``, it was served
with that card and nothing else: an auditor read "failed, stays challenger" on the champion.
"""

from __future__ import annotations

import json

from service_fixtures import asgi_client, auth, linear_model, service_home  # noqa: F401
from test_registry_mlflow import home, register_fake  # noqa: F401 - a fixture and a helper

from recommender import registry
from recommender.service import load_serve_config
from recommender.service._pages import champion_record, model_card_facts, model_card_page


def _card_files(home, version: str) -> None:
    folder = home / "cards" / version
    folder.mkdir(parents=True)
    (folder / "card.html").write_text("<h1>Model card</h1><nav>contents</nav><p>gate: failed</p>")
    (folder / "card.json").write_text(json.dumps({"version": version}))


def test_a_version_promoted_over_the_gate_is_served_with_a_card_saying_so(home):
    register_fake()
    register_fake(passed=False)  # "worse": stays challenger
    registry.promote("2", reason="reviewed by the panel", force=True)
    _card_files(home, "2")
    config = load_serve_config()

    page = model_card_page(config, "2", None).body.decode()
    said = page[page.index('id="champion-record"') :]
    assert "FAILED the promotion gate" in said and "promote --force" in said
    assert "reviewed by the panel" in said and "test-suite" in said and "worse" in said
    assert page.index("<h1>") < page.index('id="champion-record"') < page.index("<nav>")

    facts = json.loads(model_card_facts(config, "2", None).body)
    champion = facts["serving"]["champion"]
    assert champion["event"]["forced"] is True and champion["event"]["kind"] == "promote"
    assert "FAILED" in champion["statement"]


def test_the_gate_a_person_and_a_rollback_are_told_apart(home):
    register_fake()
    first = champion_record("1")
    assert first["event"]["kind"] == "gate" and "by its training run" in first["statement"]
    assert "FAILED" not in first["statement"]
    register_fake()
    registry.rollback(reason="v2 misranks nurses")
    back = champion_record("1")
    assert back["event"]["kind"] == "rollback"
    assert "rolled back to by test-suite: v2 misranks nurses" in back["statement"]
    registry.promote("2", reason="fixed upstream")
    assert "promoted by test-suite: fixed upstream" in champion_record("2")["statement"]


def test_an_alias_moved_outside_the_product_or_an_unreadable_registry_is_said(home, monkeypatch):
    register_fake()
    register_fake(passed=False)  # stays challenger; then the alias is moved by hand
    registry.client().set_registered_model_alias("burnout-recommender", "champion", "2")
    assert champion_record("2")["event"] is None
    assert "outside `recommender train`" in champion_record("2")["statement"]

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'nowhere' / 'none.db'}")
    unread = champion_record("2")
    assert unread["event"] is None and unread["statement"].startswith("not known")
    _card_files(home, "2")
    page = model_card_page(load_serve_config(), "2", None)
    assert page.status_code == 200 and "not known" in page.body.decode()


def test_no_model_loaded_is_still_a_503(home):
    assert model_card_page(load_serve_config(), None, "no champion").status_code == 503


def test_the_served_card_gives_the_aliases_the_registry_holds_now(
    home, asgi_client, linear_model, monkeypatch
):
    # A card keeps the aliases its version got at registration; after a promotion they were
    # served as they were: "challenger" only, for the champion.
    from recommender.service import service as service_module

    register_fake()
    register_fake(passed=False)  # stays challenger
    for version, at_registration in (("1", ["challenger", "champion"]), ("2", ["challenger"])):
        _card_files(home, version)
        card = home / "cards" / version / "card.json"
        card.write_text(json.dumps({"model": {"version": version, "aliases": at_registration}}))
    monkeypatch.setattr(
        service_module,
        "load_champion_model",
        lambda: (linear_model, registry.aliases()["champion"]),
    )
    registry.promote("2", reason="reviewed by the panel", force=True)
    assert asgi_client.post("/reload", headers=auth("scientist")).json()["model_version"] == "2"

    facts = asgi_client.get("/model_card.json", headers=auth("auditor")).json()
    assert facts["serving"]["aliases"] == ["challenger", "champion"]
    assert "aliases" not in facts["model"]
    assert facts["model"]["aliases_at_registration"] == ["challenger"]
    page = asgi_client.get("/model_card", headers=auth("auditor")).text
    assert "Aliases now:</strong> challenger, champion" in page

    registry.rollback(reason="v2 misranks nurses")
    asgi_client.post("/reload", headers=auth("scientist"))
    facts = asgi_client.get("/model_card.json", headers=auth("auditor")).json()
    assert facts["model"]["version"] == "1" and facts["serving"]["aliases"] == ["champion"]


def test_unreadable_aliases_do_not_withhold_the_card(home, monkeypatch):
    register_fake()
    _card_files(home, "1")

    def down(*args, **kwargs):
        raise ConnectionError("the tracking server does not answer")

    monkeypatch.setattr(registry, "aliases", down)
    facts = json.loads(model_card_facts(load_serve_config(), "1", None).body)
    assert facts["serving"]["aliases"] is None
    page = model_card_page(load_serve_config(), "1", None).body.decode()
    assert "Aliases now:</strong> not known" in page
