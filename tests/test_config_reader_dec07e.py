"""The config reader's fast path (libyaml) reads as its PyYAML path does, and refuses with
PyYAML's messages (recommender/config_file.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from recommender import config_file
from recommender.config_file import read_config
from recommender.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(ROOT.glob("configs/**/*.yaml"))


def _pure(path: Path):
    """What the PyYAML path reads: ``(data, lines)``."""
    text = path.read_text(encoding="utf-8-sig")
    _, lines, data = config_file._read(config_file._Loader(text), str(path))
    return data, lines


def test_the_fast_path_is_there():
    # PyYAML's wheels carry libyaml; without it every read would take the slow path unseen.
    assert yaml.__with_libyaml__
    assert config_file._FastLoader is not None


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_reads_the_same_values_and_lines(path):
    mapping = read_config(path, what="config")
    data, lines = _pure(path)
    assert dict(mapping) == data
    assert mapping.lines == lines


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\n b: 2\n",  # a key indented under a value
        "a: [1, 2\nb: 3\n",  # a list never closed
        "a: 'open\n",  # a quote never closed
        "a: 1\n- b\n",  # a list item beside a mapping
        "a: *nowhere\n",  # an alias of no anchor
        "a: " + "[" * 2000 + "]" * 2000 + "\n",  # deeper than libyaml's limit
    ],
)
def test_a_file_libyaml_refuses_gets_pyyamls_message(tmp_path, text):
    path = tmp_path / "serve.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as fast:
        read_config(path, what="serve config")
    # The same file through the PyYAML path alone (as before the fast path).
    saved = config_file._FastLoader
    config_file._FastLoader = None
    try:
        with pytest.raises(InputError) as pure:
            read_config(path, what="serve config")
    finally:
        config_file._FastLoader = saved
    assert str(fast.value) == str(pure.value)
    assert "<unicode string>" not in str(fast.value)


def test_the_rules_refuse_on_the_fast_path_with_their_lines(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("n: 2e4\nalpha: 0.1\nflag: yes\n")
    with pytest.raises(InputError, match=r"line 3: flag = yes is read as true/false"):
        read_config(path, what="training config")
    path.write_text("n: 2e4\nalpha: 0.1\nalpha: 0.5\n")
    with pytest.raises(InputError, match=r"line 3: alpha is given twice \(also line 2\)"):
        read_config(path, what="training config")
    path.write_text("n: 2e4\ncode: 010\n")
    with pytest.raises(InputError, match=r"line 2: code = 010 is read as an octal number"):
        read_config(path, what="training config")
    path.write_text("n: 2e4\nsize: 1_000\nrate: 1e-3\nhex: 0x1f\nwhen: 2024-01-02\n")
    assert dict(read_config(path, what="training config")) == {
        "n": 20000.0,
        "size": 1000,
        "rate": 0.001,
        "hex": 31,
        "when": "2024-01-02",
    }
