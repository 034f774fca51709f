"""serve.yaml: the shipped file loads; mistakes name the key, the value and what is accepted."""

import pytest
import yaml

from recommender.errors import InputError
from recommender.paths import config_path
from recommender.service import load_serve_config


def test_shipped_config():
    config = load_serve_config()
    assert (config.host, config.port) == ("127.0.0.1", 3000)
    assert config.alpha == pytest.approx(0.1) and config.coverage == pytest.approx(0.9)
    assert config.max_batch_rows == 10_000
    assert config.api_keys == ()  # no keys in the repository, not even hashed
    assert "not a diagnosis" in config.disclaimer and "QD85" in config.disclaimer


@pytest.mark.parametrize("change, words", [
    ({"port": 0}, "port = 0 is not accepted; give an integer from 1 to 65535"),
    ({"alpha": "ten"}, "alpha = 'ten'"),
    ({"colour": "red"}, "unknown key(s) ['colour']"),
    ({"auth": {"keys": [{"role": "admin", "sha256": "0" * 64}]}}, "role: 'admin'"),
    ({"auth": {"keys": [{"role": "program", "sha256": "my-clear-key"}]}}, "never the key itself"),
    ({"ranking": {"max_overlap": 2}}, "ranking.max_overlap = 2"),
    ({"disclaimer": ""}, "disclaimer"),
])
def test_mistakes_are_named(tmp_path, change, words):
    raw = yaml.safe_load(config_path("serve.yaml").read_text())
    raw.update(change)
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError) as caught:
        load_serve_config(path)
    assert words in str(caught.value)
    assert "my-clear-key" not in str(caught.value)


def test_config_file_from_the_environment(tmp_path, monkeypatch):
    raw = yaml.safe_load(config_path("serve.yaml").read_text())
    raw["port"] = 4321
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("RECOMMENDER_SERVE_CONFIG", str(path))
    assert load_serve_config().port == 4321
