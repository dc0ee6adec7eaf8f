"""The shared config loader: file < environment < overrides, errors naming the key."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from genesys.config import ConfigError, env_name, load_config, one_of, positive


@dataclass
class Inner:
    url: str = ""
    retries: int = field(default=3, metadata={"check": positive})
    mode: str = field(default="a", metadata={"check": one_of("a", "b")})


@dataclass
class Outer:
    listen: str = "127.0.0.1:1"
    ratio: float = 1.0
    debug: bool = False
    tags: list[str] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)


def test_defaults_file_env_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('listen = "0.0.0.0:9"\nratio = 2\n[inner]\nurl = "x"\nretries = 5\n')
    env = {"GENESYS_INNER_URL": "y", "GENESYS_DEBUG": "yes", "GENESYS_TAGS": "a, b"}
    cfg = load_config(Outer, path, environ=env, overrides={"inner.retries": 7, "listen": None})
    assert cfg.listen == "0.0.0.0:9" and cfg.ratio == 2.0 and isinstance(cfg.ratio, float)
    assert cfg.inner.url == "y" and cfg.inner.retries == 7 and cfg.debug is True
    assert cfg.tags == ["a", "b"] and cfg.inner.mode == "a"
    assert env_name("inner.url") == "GENESYS_INNER_URL"


@pytest.mark.parametrize("text, env, key", [
    ("nope = 1\n", {}, "nope"),
    ("[inner]\nport = 1\n", {}, "inner.port"),
    ("listen = 5\n", {}, "listen"),
    ("debug = 1\n", {}, "debug"),
    ("[inner]\nretries = 0\n", {}, "inner.retries"),
    ("[inner]\nmode = 'c'\n", {}, "inner.mode"),
    ("", {"GENESYS_INNER_RETRIES": "many"}, "inner.retries"),
    ("", {"GENESYS_DEBUG": "maybe"}, "debug"),
    ("inner = 3\n", {}, "inner"),
])
def test_errors_name_the_key(tmp_path, text, env, key):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(Outer, path, environ=env)
    assert err.value.key == key and repr(key) in str(err.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(Outer, tmp_path / "none.toml", environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("listen = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(Outer, bad, environ={})
