"""One TOML file per process, every key overridable by a GENESYS_* environment variable.

A process describes its settings as (nested) dataclasses with typed fields and defaults:

    @dataclass
    class StoreConfig:
        url: str = ""

    @dataclass
    class ServerConfig:
        listen: str = "127.0.0.1:50051"
        store: StoreConfig = field(default_factory=StoreConfig)

    cfg = load_config(ServerConfig, path="server.toml", env_prefix="GENESYS_")

A nested dataclass is a TOML table; the variable for ``store.url`` is ``GENESYS_STORE_URL``.
Precedence: defaults < file < environment < ``overrides`` (e.g. command-line flags).
Unknown keys and values of the wrong type raise ConfigError naming the key. A field may
carry ``metadata={"check": fn}``; ``fn(value)`` returns an error message or None.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@dataclasses.dataclass
class TlsConfig:
    """A server's TLS section (coordinator and gateway alike)."""

    cert: str = ""  # PEM certificate chain; empty: plaintext
    key: str = ""
    client_ca: str = ""  # set to require client certificates (mTLS)


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid; the message names the key."""

    def __init__(self, key: str, problem: str):
        self.key = key
        super().__init__(f"config key {key!r}: {problem}")


def load_config(
    schema: type[T],
    path: str | Path | None = None,
    env_prefix: str = "GENESYS_",
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> T:
    """Build ``schema`` from defaults, a TOML file, the environment and dotted overrides."""
    values: dict[str, Any] = {}
    if path:
        try:
            values = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError("config", f"file not found: {path}") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError("config", f"{path} is not valid TOML: {err}") from None
    env = os.environ if environ is None else environ
    for key, hint in _leaves(schema):
        name = env_prefix + key.replace(".", "_").upper()
        if name in env:
            _set(values, key, _from_env(key, env[name], hint))
    for key, value in (overrides or {}).items():
        if value is not None:
            _set(values, key, value)
    return _build(schema, values, "")


def env_name(key: str, env_prefix: str = "GENESYS_") -> str:
    """The environment variable that overrides a dotted key."""
    return env_prefix + key.replace(".", "_").upper()


def _hints(schema: type) -> dict[str, Any]:
    return typing.get_type_hints(schema)


def _leaves(schema: type, prefix: str = ""):
    for f in dataclasses.fields(schema):
        hint = _hints(schema)[f.name]
        if dataclasses.is_dataclass(hint):
            yield from _leaves(hint, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", hint


def _set(values: dict[str, Any], key: str, value: Any) -> None:
    *tables, last = key.split(".")
    for table in tables:
        values = values.setdefault(table, {})
    values[last] = value


def _from_env(key: str, raw: str, hint: Any) -> Any:
    base, _ = _unwrap_optional(hint)
    if typing.get_origin(base) is list:
        return [item.strip() for item in raw.split(",") if item.strip()]
    if base is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(key, f"expected a boolean, got {raw!r}")
    if base in (int, float):
        try:
            return base(raw)
        except ValueError:
            raise ConfigError(key, f"expected {base.__name__}, got {raw!r}") from None
    return raw


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def _check_type(key: str, value: Any, hint: Any) -> Any:
    base, optional = _unwrap_optional(hint)
    if value is None and optional:
        return None
    origin = typing.get_origin(base)
    if origin is list:
        (item,) = typing.get_args(base) or (Any,)
        if not isinstance(value, list):
            raise ConfigError(key, f"expected a list, got {type(value).__name__}")
        return [_check_type(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if origin is dict or base is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, f"expected a table, got {type(value).__name__}")
        return value
    if base is Any:
        return value
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base is int and isinstance(value, bool) or not isinstance(value, base):
        raise ConfigError(key, f"expected {base.__name__}, got {type(value).__name__} {value!r}")
    return value


def _build(schema: type[T], values: Mapping[str, Any], prefix: str) -> T:
    if not isinstance(values, Mapping):
        raise ConfigError(prefix.rstrip(".") or "config", "expected a table")
    hints = _hints(schema)
    names = {f.name for f in dataclasses.fields(schema)}
    for unknown in sorted(set(values) - names):
        raise ConfigError(prefix + unknown, f"unknown key (known: {', '.join(sorted(names))})")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(schema):
        key, hint = prefix + f.name, hints[f.name]
        if dataclasses.is_dataclass(hint):
            kwargs[f.name] = _build(hint, values.get(f.name, {}), key + ".")
            continue
        if f.name not in values:
            continue
        value = _check_type(key, values[f.name], hint)
        check = f.metadata.get("check")
        problem = check(value) if check else None
        if problem:
            raise ConfigError(key, problem)
        kwargs[f.name] = value
    return schema(**kwargs)


def one_of(*choices: str):
    """A field check accepting only the given strings."""

    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def positive(value: float) -> str | None:
    """A field check accepting only numbers > 0."""
    return None if value > 0 else "must be > 0"
