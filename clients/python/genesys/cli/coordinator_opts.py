"""Shared options and output helpers of the coordinator commands (`genesys experiment ...`).

Every command takes --address (GENESYS_COORDINATOR), --token (GENESYS_TOKEN), --config
(GENESYS_CONFIG, a client TOML file) and, for reads, --json.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable

import click


def coordinator_command(fn: Callable) -> Callable:
    """Add connection options; the command receives a connected `client` instead."""

    @click.option("--address", envvar="GENESYS_COORDINATOR", default=None,
                  help="Coordinator host:port (env GENESYS_COORDINATOR; default: the local "
                       "server's data dir, else 127.0.0.1:50051).")
    @click.option("--token", envvar="GENESYS_TOKEN", default=None,
                  help="Bearer token (env GENESYS_TOKEN; default: the local server's token file).")
    @click.option("--config", "config_path", envvar="GENESYS_CONFIG", default=None,
                  type=click.Path(dir_okay=False), help="Client config TOML (env GENESYS_CONFIG).")
    @functools.wraps(fn)
    def wrapper(address, token, config_path, **kwargs):
        from genesys.client import Coordinator, CoordinatorError
        from genesys.client.coordinator import client_config
        from genesys.config import ConfigError

        try:
            cfg = client_config(config_path)
        except ConfigError as e:
            raise click.UsageError(str(e)) from None
        with Coordinator(address, token, config=cfg, retries=2) as client:
            try:
                return fn(client=client, **kwargs)
            except CoordinatorError as e:
                raise click.ClickException(f"{e.code.name}: {e.details}"
                                           + _token_hint(e, token)) from None

    return wrapper


def _token_hint(error, token: str | None) -> str:
    """Where a token comes from, when the coordinator refused a call for want of one."""
    import grpc

    if error.code != grpc.StatusCode.UNAUTHENTICATED:
        return ""
    given = "the token given was refused" if token else "no token was given"
    return (f"\n({given}: pass --token or set GENESYS_TOKEN; a coordinator started with "
            "`genesys server start --data-dir D` keeps its admin token in D/token, e.g. "
            "--token \"$(cat D/token)\")")


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def to_dict(message) -> dict:
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(message, preserving_proto_field_name=True)


def emit(data, as_json: bool, text: Callable[[], Iterable[str]]) -> None:
    """Print protobuf message(s) as JSON, or the lines `text()` yields."""
    if as_json:
        if isinstance(data, list):
            click.echo(json.dumps([to_dict(m) for m in data], indent=2))
        else:
            click.echo(json.dumps(to_dict(data), indent=2))
        return
    for line in text():
        click.echo(line)


def enum_name(enum, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix).lower()
