"""A model's lifecycle as a person drives it: promote, rollback, a deleted run, a kill midway.

Every test works on its own copy of one home per module: the session's trained version 1, then
a version 2 that passed its gate (the champion) and a version 3 that failed it (challenger).
"""

from __future__ import annotations

import fcntl
import json
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
from test_pipeline_train import use_home
from test_registry_mlflow import register_fake

from recommender import registry
from recommender.errors import InputError
from recommender.service import load_serve_config
from recommender.service._pages import champion_record, model_card_facts, model_card_page


def built_home(trained, tmp_path_factory, build):
    """A copy of the session's trained home (version 1) in which ``build()`` has run."""
    home = tmp_path_factory.mktemp("lifecycle-home")
    shutil.copytree(trained[1], home, dirs_exist_ok=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_home(monkeypatch, home)
        build()
    return home


@pytest.fixture(scope="module")
def three_versions(trained, tmp_path_factory):
    def build():
        register_fake()
        register_fake(passed=False)
        assert registry.aliases() == {"champion": "2", "challenger": "3"}

    return built_home(trained, tmp_path_factory, build)


@pytest.fixture
def home(three_versions, tmp_path, monkeypatch):
    shutil.copytree(three_versions, tmp_path, dirs_exist_ok=True)
    use_home(monkeypatch, tmp_path)
    return tmp_path


def _log(home) -> str:
    return (home / "promotions.jsonl").read_text()


@pytest.mark.parametrize("written", ["01", " 1", "1 ", "001"])
def test_a_version_number_written_otherwise_is_recorded_as_the_registry_writes_it(home, written):
    # "02" once became champion "02": the history never matched it to the alias "2", so the
    # next rollback went "from 2 to 02" and the card said the alias was moved outside.
    event = registry.promote(written, reason="panel review")
    assert event.version == "1" and event.previous_version == "2"
    assert registry.aliases()["champion"] == "1"
    assert json.loads(_log(home).splitlines()[-1])["version"] == "1"
    assert champion_record("1")["event"]["kind"] == "promote"
    assert registry.rollback(reason="undo").version == "2"


@pytest.mark.parametrize("written", ["0", "latest", "champion", "-1", "2.0", "", "v2", "²"])
def test_anything_but_a_registered_version_number_is_refused_naming_what_is(home, written):
    before = _log(home)
    with pytest.raises(InputError) as refused:
        registry.promote(written, reason="probe")
    said = str(refused.value)
    assert f"no version {written!r}" in said
    assert "a registered version number (1, 2, 3)" in said
    assert "challenger is version 3, champion is version 2" in said
    assert registry.aliases() == {"champion": "2", "challenger": "3"} and _log(home) == before


def test_a_version_whose_training_run_was_deleted_is_neither_promoted_nor_rolled_back_to(home):
    client = registry.client()
    run_id = client.get_model_version(registry.MODEL_NAME, "1").run_id
    client.delete_run(run_id)
    before = _log(home)
    for move in (
        lambda: registry.promote("1", reason="probe"),
        lambda: registry.rollback(reason="probe"),
    ):
        with pytest.raises(InputError, match=f"training run {run_id} was deleted") as refused:
            move()
        assert f"mlflow runs restore --run-id {run_id}" in str(refused.value)
        assert registry.aliases()["champion"] == "2" and _log(home) == before
    client.restore_run(run_id)
    assert registry.rollback(reason="restored").version == "1"


def test_rollback_then_promote_then_rollback_follows_the_champions_in_order(home):
    assert registry.rollback(reason="v2 misranks nurses").version == "1"
    with pytest.raises(InputError, match="no earlier champion"):
        registry.rollback(reason="nothing before 1")
    assert registry.promote("3", reason="reviewed", force=True).forced
    assert registry.rollback(reason="v3 after all not").version == "1"
    champions = [e.version for e in registry.promotion_history() if e.alias == "champion"]
    assert champions == ["1", "2", "1", "3", "1"]


def test_the_served_card_says_when_the_registry_champion_is_another_version(home):
    config = load_serve_config()
    registry.rollback(reason="v2 misranks nurses")  # version 1 has the trained card
    facts = json.loads(model_card_facts(config, "1", None).body)
    assert facts["serving"]["replaced"] is None and facts["serving"]["aliases"] == ["champion"]
    assert 'id="champion-replaced"' not in model_card_page(config, "1", None).body.decode()

    registry.promote("2", reason="fixed upstream")  # the service still answers with 1
    facts = json.loads(model_card_facts(config, "1", None).body)
    said = facts["serving"]["replaced"]
    assert "champion is now version 2" in said and "POST /reload" in said
    assert facts["serving"]["aliases"] == []
    page = model_card_page(config, "1", None).body.decode()
    assert 'id="champion-replaced"' in page and "champion is now version 2" in page


def test_the_champions_command_lists_every_change_of_the_champion(home, capsys):
    from recommender.cli import main

    registry.promote("3", reason="panel: better for nurses", force=True)
    registry.rollback(reason="calibration drift")
    assert main(["champions"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[1].split(" (")[0] for line in lines[:-1]] == [
        "version 1",
        "version 2",
        "version 3",
        "version 2",
    ]
    assert "promoted by test-suite OVER A FAILED GATE (--force): panel: better" in lines[2]
    assert "rolled back to by test-suite: calibration drift" in lines[3]
    assert lines[-1] == "champion now: version 2"
    assert main(["champions", "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["kind"] for e in events] == ["gate", "gate", "promote", "rollback"]
    assert events[2]["forced"] is True


def test_a_promote_killed_between_the_alias_and_its_record_leaves_a_store_a_rerun_mends(home):
    # SIGKILL at the worst moment: the alias moved, nothing recorded yet.
    killed_midway = textwrap.dedent(
        """
        import os, signal
        from recommender.registry import _aliases

        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)

        _aliases.record_events = die
        _aliases.promote("1", reason="killed midway")
        """
    )
    before = _log(home)
    done = subprocess.run([sys.executable, "-c", killed_midway], capture_output=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]

    registered = {str(v.version) for v in registry.client().search_model_versions("")}
    assert set(registry.aliases().values()) <= registered
    assert _log(home) == before
    with open(home / "mlflow.db.lock", "a+") as lock:  # the system released it
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    # The move was declared before the alias moved: the next alias change completes its
    # record (marked late) before reading the history, so the rollback undoes that promotion.
    assert registry.rollback(reason="after the kill").version == "2"
    late = [e for e in registry.promotion_history() if e.recorded_late]
    assert [(e.version, e.reason) for e in late] == [("1", "killed midway")]
    assert "killed midway" in _log(home)


def test_promoting_the_champion_again_says_nothing_else_changed(home, capsys):
    from recommender.cli import main

    assert main(["promote", "2", "--reason", "endorsed by the panel"]) == 0
    said = capsys.readouterr().out
    assert "champion: version 2 -> 2" in said and "was already the champion" in said
    assert registry.aliases()["champion"] == "2"
    assert champion_record("2")["event"]["kind"] == "promote"
    assert registry.rollback(reason="undo").version == "1"
