"""What hand editing does to the config files (train.yaml, serve.yaml, the catalog, a scenario):
each mistake is refused naming the file, the line and the key, the value and what is accepted,
or read as it was meant; never a traceback, never a value the writer did not mean.

Every case starts from the shipped file and edits its text as a person would (comments kept), so
a line number in a message is a line of the edited file.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from pipelines.train import load_config
from recommender.catalog import load_catalog
from recommender.cli import main
from recommender.config_file import MAX_BYTES, MAX_VALUES
from recommender.errors import InputError
from recommender.paths import shipped_config_dir
from recommender.service import load_serve_config
from recommender.simulate import load_scenario

# kind -> (loader, shipped file, what messages call it, a top-level line of the file)
KINDS = {
    "train": (load_config, "train.yaml", "training config", "seed: 7"),
    "serve": (load_serve_config, "serve.yaml", "service config", "port: 3000"),
    "catalog": (load_catalog, "interventions.yaml", "catalog", "control: none"),
    "scenario": (load_scenario, "scenarios/conservative.yaml", "scenario", "name: conservative"),
}


def _shipped(kind: str) -> str:
    return (shipped_config_dir() / KINDS[kind][1]).read_text(encoding="utf-8")


def _line_of(text: str, line: str) -> int:
    return text.splitlines().index(line) + 1


def _edited(tmp_path, kind: str, old: str, new: str) -> Path:
    text = _shipped(kind)
    assert text.count(old) >= 1, old
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _refusal(kind: str, path) -> str:
    with pytest.raises(InputError) as caught:
        KINDS[kind][0](path)
    message = str(caught.value)
    assert f"{KINDS[kind][2]} {path}" in message  # the file, named as what it is
    return message


# -- the file as a whole ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_a_key_written_twice_is_refused_by_name_and_both_lines(tmp_path, kind):
    text = _shipped(kind)
    first = KINDS[kind][3]
    key = first.split(":")[0]
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text + f"\n{key}: again\n", encoding="utf-8")
    message = _refusal(kind, path)
    last = len(text.splitlines()) + 2
    assert f"line {last}: {key} is given twice (also line {_line_of(text, first)})" in message


@pytest.mark.parametrize(
    "kind, old, new, key",
    [
        ("serve", "  epsilon: 0.1\n", "  epsilon: 0.1\n  epsilon: 0.5\n", "exploration.epsilon"),
        # a referral rule loosened to ee >= 20 by a second key on the same line
        (
            "serve",
            "- {ee_at_least: 48}",
            "- {ee_at_least: 48, ee_at_least: 20}",
            "safety.referral_rules[1].ee_at_least",
        ),
        (
            "catalog",
            "    capacity: 40\n",
            "    capacity: 40\n    capacity: 400\n",
            "arms[1].capacity",
        ),
        ("train", "  alpha: 0.1 ", "  alpha: 0.5\n  alpha: 0.1 ", "evaluation.alpha"),
    ],
    ids=["serve-epsilon", "serve-referral-rule", "catalog-capacity", "train-alpha"],
)
def test_a_nested_key_written_twice_is_refused_by_its_dotted_path(tmp_path, kind, old, new, key):
    message = _refusal(kind, _edited(tmp_path, kind, old, new))
    assert f"{key} is given twice" in message


@pytest.mark.parametrize("kind", KINDS)
def test_a_windows_1252_letter_is_refused_naming_its_line(tmp_path, kind):
    # a line added by an editor saving Windows-1252 (the shipped text is UTF-8 and not all ASCII)
    text = _shipped(kind)
    path = tmp_path / f"{kind}.yaml"
    path.write_bytes(text.encode("utf-8") + "# noted by Renée\n".encode("cp1252"))
    message = _refusal(kind, path)
    assert f"line {len(text.splitlines()) + 1} is not UTF-8 text (byte 0xe9" in message
    assert "save the file as UTF-8" in message


@pytest.mark.parametrize("kind", KINDS)
def test_utf16_is_refused_saying_to_save_as_utf8(tmp_path, kind):
    path = tmp_path / f"{kind}.yaml"
    path.write_bytes(codecs.BOM_UTF16_LE + _shipped(kind).encode("utf-16-le"))
    assert "is UTF-16 text; save it as UTF-8" in _refusal(kind, path)


@pytest.mark.parametrize("kind", KINDS)
def test_a_utf8_byte_order_mark_is_read_as_the_file(tmp_path, kind):
    path = tmp_path / f"{kind}.yaml"
    path.write_bytes(_shipped(kind).encode("utf-8"))
    without = KINDS[kind][0](path)
    path.write_bytes(codecs.BOM_UTF8 + _shipped(kind).encode("utf-8"))  # Windows Notepad's
    assert KINDS[kind][0](path) == without


@pytest.mark.parametrize("content", ["", "\n\n", "# every setting commented out\n# seed: 3\n"])
@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_file_is_refused_not_read_as_defaults(tmp_path, kind, content):
    path = tmp_path / f"{kind}.yaml"
    path.write_text(content, encoding="utf-8")
    assert "is empty (or holds only comments); give its settings" in _refusal(kind, path)


@pytest.mark.parametrize("kind", ["train", "serve", "catalog"])
def test_a_folder_is_named_as_a_folder(tmp_path, kind):
    folder = tmp_path / f"{kind}.yaml"
    folder.mkdir()
    assert "is a folder; give the path of a YAML file" in _refusal(kind, folder)


@pytest.mark.parametrize("kind", KINDS)
def test_a_tab_is_named_with_its_line(tmp_path, kind):
    text = _shipped(kind)
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  ") and line.strip())
    lines[at] = "\t" + lines[at][2:]
    path = tmp_path / f"{kind}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = _refusal(kind, path)
    assert f"line {at + 1}, column 1: a tab; YAML indents with spaces only" in message


def _bomb(levels: int) -> str:
    text = "x-l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
    for level in range(1, levels):
        text += f"x-l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]\n"
    return text


@pytest.mark.parametrize("kind", KINDS)
def test_anchors_expanding_to_a_million_values_are_refused(tmp_path, kind):
    assert 10**6 > MAX_VALUES
    path = tmp_path / f"{kind}.yaml"
    path.write_text(_bomb(6) + _shipped(kind), encoding="utf-8")
    message = _refusal(kind, path)
    assert f"expands to more than {MAX_VALUES:,} values" in message


def test_the_shipped_anchors_are_still_read():
    # interventions.yaml shares a pooled record through an anchor, serve.yaml a referral
    assert load_catalog().arm("coaching").evidence
    assert (
        load_serve_config().safety.referrals["resident"]
        == (load_serve_config().safety.referrals["physician"])
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_too_large_for_a_config_is_refused_unread(tmp_path, kind):
    path = tmp_path / f"{kind}.yaml"
    path.write_text(_shipped(kind) + "#" * MAX_BYTES + "\n", encoding="utf-8")
    assert f"accepted: a config of at most {MAX_BYTES:,} bytes" in _refusal(kind, path)


# -- values: YAML 1.1's readings, wrong types, ranges ------------------------------------
@pytest.mark.parametrize(
    "kind, old, new, words",
    [
        # YAML 1.1 read 03000 as octal: the service would have listened on port 1536
        ("serve", "port: 3000", "port: 03000", "line 11: port = 03000 is read as an octal"),
        ("train", "seed: 7", "seed: 010", "line 7: seed = 010"),
        # a crisis line's number with a leading zero became another number
        ("serve", 'contact: "911 in the US', "contact: 0123456 #", "[2].contact = 0123456"),
        ("serve", "policy: thompson", "policy: off", "exploration.policy = off is read as true"),
        ("catalog", "cost_is_assumption: true", "cost_is_assumption: yes", "[1].cost_is_assu"),
        ("train", "source: data", "source: no", 'or "no" in quotes for the text'),
        # wrong types and ranges, named with their line too
        ("train", "n_folds: 3 ", "n_folds: 1 ", "line 50: learner.n_folds = 1 is not accepted"),
        ("train", "holdout_share: 0.3", "holdout_shre: 0.3", "line 41: split.holdout_shre = 0.3"),
        ("train", "holdout_share: 0.3", "- 0.3", "line 40: split = [0.3] is not accepted; give a"),
        ("serve", "alpha: 0.1", "alpha: 0", "line 28: alpha = 0 is not accepted"),
        ("serve", "top: 3", "top: 2.5", "line 94: explanation.top = 2.5 is not accepted"),
        # a capacity of 2.5 people, and a negative cost
        ("catalog", "capacity: 40", "capacity: 2.5", "line 130: arms[1] (coaching).capacity"),
        ("catalog", "cost_per_person: 1400", "cost_per_person: -1", "line 123: arms[1] (coaching)"),
    ],
    ids=[
        *("port-octal", "seed-octal", "crisis-contact", "policy-off", "yes", "source-no"),
        *("n_folds-1", "misspelt-key", "list-for-mapping", "alpha-0", "top-2.5"),
        *("capacity-2.5", "negative-cost"),
    ],
)
def test_a_hand_edited_value_is_refused_by_key_and_line(tmp_path, kind, old, new, words):
    assert words in _refusal(kind, _edited(tmp_path, kind, old, new))


def test_numbers_are_read_as_written(tmp_path):
    # YAML 1.1 reads 1e-1 and 1.4e3 as texts (refused as "not a number") and a date as a date
    serve = load_serve_config(_edited(tmp_path, "serve", "  epsilon: 0.1", "  epsilon: 1e-1"))
    assert serve.exploration.epsilon == 0.1
    catalog = load_catalog(
        _edited(tmp_path, "catalog", "cost_per_person: 1400", "cost_per_person: 1.4e3")
    )
    assert catalog.arm("coaching").cost_per_person == 1400.0
    train = load_config(
        _edited(tmp_path, "train", "  experiment: burnout-recommender", "  experiment: 2026-12-06")
    )
    assert train["registry"]["experiment"] == "2026-12-06"
    train = load_config(_edited(tmp_path, "train", "  n: 20000", "  n: 20_000"))
    assert train["data"]["n"] == 20000


def test_a_list_where_a_section_goes_says_the_section_s_keys(tmp_path):
    # pydantic said "a valid dictionary or instance of _Split", a class name no file holds
    message = _refusal("train", _edited(tmp_path, "train", "holdout_share: 0.3", "- 0.3"))
    assert "give a mapping of settings (keys: holdout_share)" in message
    assert "_Split" not in message


def test_an_override_is_not_given_the_line_of_the_value_it_replaced(tmp_path):
    path = _edited(tmp_path, "train", "seed: 7", "seed: 7")
    with pytest.raises(InputError) as caught:
        load_config(path, overrides={"learner": {"n_folds": 1}})
    assert "learner.n_folds = 1 is not accepted" in str(caught.value)
    assert "line" not in str(caught.value)


# -- at the command line ------------------------------------------------------------------------
@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RECOMMENDER_SERVE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _cp1252(path: Path, kind: str) -> Path:
    path.write_bytes(_shipped(kind).encode("utf-8") + "# Renée\n".encode("cp1252"))
    return path


@pytest.mark.parametrize(
    "argv, words",
    [
        (lambda h: ["train", "--config", str(_cp1252(h / "t.yaml", "train"))], "is not UTF-8"),
        (
            lambda h: ["serve", "--check", "--config", str(_dup_port(h / "s.yaml"))],
            "port is given twice",
        ),
        (
            lambda h: [
                "simulate",
                "--scenario",
                str(_cp1252(h / "sc.yaml", "scenario")),
                "--out",
                str(h / "c.csv"),
            ],
            "is not UTF-8",
        ),
        (
            lambda h: [
                "simulate",
                "--catalog",
                str(_cp1252(h / "cat.yaml", "catalog")),
                "--out",
                str(h / "c.csv"),
            ],
            "is not UTF-8",
        ),
    ],
    ids=["train", "serve-check", "simulate-scenario", "simulate-catalog"],
)
def test_the_commands_say_it_in_one_line_and_exit_2(home, capsys, argv, words):
    assert main(argv(home)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and words in err, err
    assert not (home / "c.csv").exists() and not (home / "home").exists()


def _dup_port(path: Path) -> Path:
    path.write_text(_shipped("serve").replace("port: 3000", "port: 3190\nport: 3191"))
    return path


# -- what a training config names -------------------------------------------------------------
@pytest.mark.parametrize(
    "old, new, words",
    [
        ("outcomes: [ee, dp, pa]", "outcomes: [ee, dp, pa, ee]", "outcomes: 'ee' given twice"),
        (
            "exclude_features: []",
            "exclude_features: [gender, age, gender]",
            "exclude_features: 'gender' given twice",
        ),
        (
            "extra_features: []",
            "extra_features: [site, unit, site]",
            "extra_features: 'site' given twice",
        ),
    ],
    ids=["outcomes", "exclude_features", "extra_features"],
)
def test_a_name_listed_twice_is_refused(tmp_path, old, new, words):
    message = _refusal("train", _edited(tmp_path, "train", old, new))
    assert words in message and "accepted: each name once" in message
