"""The gateway config's [knowledge] and [tls] sections: defaults, env overrides, errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from genesys.llm_gateway.config import ConfigError, load_config

BASE = '[models.m]\nendpoints = ["http://127.0.0.1:9"]\n'


def _load(tmp_path: Path, text: str, env: dict[str, str] | None = None):
    path = tmp_path / "gateway.toml"
    path.write_text(text + BASE)
    return load_config(path, env=env or {})


def test_defaults_and_env_overrides(tmp_path: Path):
    config = _load(tmp_path, 'data_dir = "/srv/g"\n')
    assert config.knowledge.enabled and config.knowledge.embedder == "local"
    assert config.knowledge_path == Path("/srv/g/knowledge") and not config.tls.cert
    config = _load(tmp_path, "", env={"GENESYS_GATEWAY_KNOWLEDGE__URI": "http://milvus:19530",
                                      "GENESYS_GATEWAY_KNOWLEDGE__THREADS": "4"})
    assert (config.knowledge.uri, config.knowledge.threads) == ("http://milvus:19530", 4)


@pytest.mark.parametrize("text, key", [
    ('[knowledge]\nembedder = "cohere"\n', "knowledge.embedder"),
    ('[knowledge]\nembedder = "openai"\nmodel = "e5"\n', "knowledge.endpoint"),
    ('[knowledge]\nembedder = "openai"\nendpoint = "http://e:8000"\n', "knowledge.model"),
    ("[knowledge]\nthreads = 0\n", "knowledge.threads"),
    ("[knowledge]\nchunk_chars = 1000\nchunk_overlap = 600\n", "knowledge.chunk_overlap"),
    ('[knowledge]\ncolour = "red"\n', "knowledge.colour"),
    ('[tls]\ncert = "server.pem"\n', "tls"),
    ('[tls]\ncert = "/nonexistent.pem"\nkey = "/nonexistent.key"\n', "tls.cert"),
])
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str):
    with pytest.raises(ConfigError, match=rf"config key {key}\b"):
        _load(tmp_path, text)
