"""Gateway config: TOML + GENESYS_GATEWAY_* overrides, validated with errors naming the key."""

from __future__ import annotations

import pytest
from genesys.llm_gateway.config import ROLES, ConfigError, load_config


def write(tmp_path, text: str):
    path = tmp_path / "gw.toml"
    path.write_text(text)
    return path


def test_embedded_default_serves_smollm2_for_every_role():
    config = load_config(None, env={})
    assert list(config.models) == ["smollm2"]
    assert config.models["smollm2"].launch is not None
    assert set(config.roles) == set(ROLES) and set(config.roles.values()) == {"smollm2"}


def test_env_overrides_nested_keys_with_typed_values(tmp_path):
    path = write(tmp_path, '[models.m]\nendpoints = ["http://h:1"]\n')
    config = load_config(path, env={
        "GENESYS_GATEWAY_LISTEN": "0.0.0.0:6000",
        "GENESYS_GATEWAY_MODELS__M__MAX_CONCURRENCY": "3",
        "GENESYS_GATEWAY_MODELS__M__ENDPOINTS": '["http://a:1", "http://b:2"]',
        "GENESYS_GATEWAY_ROLES__CODER": "m",
        "GENESYS_OTHER": "ignored",
    })
    assert config.listen == "0.0.0.0:6000"
    assert config.models["m"].max_concurrency == 3
    assert config.models["m"].endpoints == ["http://a:1", "http://b:2"]
    assert config.roles == {"coder": "m"}


@pytest.mark.parametrize(("text", "env", "key"), [
    ('[models.m]\nendpoints = ["http://h:1"]\nmax_concurrency = "x"\n', {}, "models.m.max_concurrency"),
    ('[models.m]\nendpoints = ["http://h:1"]\nbogus = 1\n', {}, "models.m.bogus"),
    ("[models.m]\n", {}, "models.m"),
    ('[models.m]\nendpoints = ["ftp://h"]\n', {}, "models.m.endpoints[0]"),
    ('[models.m]\nendpoints = ["http://h:1"]\n[roles]\ncoder = "nope"\n', {}, "roles.coder"),
    ('[models.m]\nendpoints = ["http://h:1"]\n[roles]\njanitor = "m"\n', {}, "roles.janitor"),
    ('[models.m]\nendpoints = ["http://h:1"]\n', {"GENESYS_GATEWAY_LISTEN": "nowhere"}, "listen"),
    ('[models.m.launch]\nreplicas = 2\ntensor_parallel_size = 2\ngpus = [0, 1]\n', {}, "models.m.launch.gpus"),
    ('[models.m]\nendpoints = ["http://h:1"]\n[auth]\nenabled = true\n', {}, "auth.tokens"),
])
def test_invalid_config_names_the_key(tmp_path, text, env, key):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), env=env)
    assert f"config key {key}" in str(err.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml", env={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "models = ["), env={})


def test_example_config_is_valid():
    from pathlib import Path

    import genesys.llm_gateway

    example = Path(genesys.llm_gateway.__file__).with_name("gateway.example.toml")
    config = load_config(example, env={"GENESYS_GATEWAY_MODELS__CODER_7B__MAX_CONCURRENCY": "16"})
    assert config.models["coder_7b"].launch.tensor_parallel_size == 2
    assert config.models["coder_7b"].max_concurrency == 16
    assert config.auth.enabled and config.roles["coder"] == "coder_7b"


def test_gateway_token_comes_from_the_env_or_the_file_it_names(tmp_path, monkeypatch):
    from genesys.client.llm import gateway_token

    monkeypatch.delenv("GENESYS_LLM_TOKEN", raising=False)
    monkeypatch.delenv("GENESYS_LLM_TOKEN_FILE", raising=False)
    assert gateway_token() is None
    secret = tmp_path / "llm_token"
    secret.write_text("tok.abc\n")
    monkeypatch.setenv("GENESYS_LLM_TOKEN_FILE", str(secret))  # how deploy/ mounts it
    assert gateway_token() == "tok.abc"
    monkeypatch.setenv("GENESYS_LLM_TOKEN", "direct")
    assert gateway_token() == "direct"
