"""What `recommender serve` does before it starts the server, in a copied home.

Every start checks the champion (:func:`recommender.registry.champion_concerns`); when its MLmodel
file says every arm of the catalog was learnt, the model itself is not loaded. In a home moved or
copied from another folder the version's files are read from this home's copy by a ``file://``
URI, which MLflow's ``get_model_info`` looked for as a path and never found: the check loaded
the whole model (about 2 s of CPU) at every start, before the server's worker loaded it again.
"""

from __future__ import annotations

import pytest

from service_fixtures import champion_home, copy_champion  # noqa: F401 - fixtures


def test_a_copied_homes_champion_is_checked_without_loading_it(
    copy_champion, tmp_path, monkeypatch
):
    from recommender.registry import MODEL_NAME, _fit, _load, champion_concerns, client

    home = copy_champion(tmp_path / "home")
    monkeypatch.setenv("RECOMMENDER_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # the copy reads its own files: the URI names this home, not the one trained in
    source = _load.readable_uri(_load.resolve_model("champion"))
    assert source.startswith("file:") and str(home) in source

    assert _fit._learnt_arms(f"models:/{MODEL_NAME}/1") == [
        "none",
        "balint_group",
        "coaching",
        "mindfulness",
        "peer_group",
        "resilience_training",
    ]

    def no_load(*_args, **_kwargs):
        raise AssertionError("the champion was loaded to check its arms")

    monkeypatch.setattr(_load, "load_model", no_load)
    assert champion_concerns(MODEL_NAME, mlflow_client=client(existing=True)) == []


@pytest.mark.parametrize("arms", [None, ["none", "coaching"]])
def test_a_champion_whose_arms_cannot_be_told_is_still_loaded(
    copy_champion, tmp_path, monkeypatch, arms
):
    # The MLmodel file unreadable, or naming fewer arms than the catalog offers: the model
    # itself says what it learnt, as before.
    from recommender.registry import MODEL_NAME, _fit, _load, champion_concerns, client

    home = copy_champion(tmp_path / "home")
    monkeypatch.setenv("RECOMMENDER_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(_fit, "_learnt_arms", lambda _uri: arms)
    loaded = []
    real = _load.load_model

    def counted(uri, *args, **kwargs):
        loaded.append(uri)
        return real(uri, *args, **kwargs)

    monkeypatch.setattr(_load, "load_model", counted)
    assert champion_concerns(MODEL_NAME, mlflow_client=client(existing=True)) == []
    assert loaded == [f"models:/{MODEL_NAME}/1"]


@pytest.mark.parametrize(
    ("argv", "frozen"),
    [
        (["recommender", "serve", "--port", "3171"], [True]),
        (["recommender", "champions"], []),  # any other command ends as before
    ],
)
def test_serve_ends_without_collecting_its_objects(monkeypatch, argv, frozen):
    # As a program (its own command line) `recommender serve` freezes its objects before it
    # exits: the interpreter's teardown collected them for over a second of CPU.
    import gc

    from recommender import cli
    from recommender.cli import cmd_champions, cmd_serve

    calls, ran = [], []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append(True))
    monkeypatch.setattr(cli, "settle_models_folders", lambda args: None)
    for module in (cmd_serve, cmd_champions):
        monkeypatch.setattr(module, "run", lambda args: ran.append(args.command) or 0)
    monkeypatch.setattr("sys.argv", argv)
    assert cli.main() == 0
    assert ran == [argv[1]] and calls == frozen
    assert cli.main(argv[1:]) == 0  # a caller's main(argv): never
    assert calls == frozen
