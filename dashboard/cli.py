"""`genesys ui`: serve the dashboard for a coordinator.

The connection settings are those of every coordinator command: --coordinator (alias
--address, env GENESYS_COORDINATOR), --token (GENESYS_TOKEN), --config (GENESYS_CONFIG), and
the client config's token_file / tls / ca_cert / client_cert / client_key (GENESYS_TOKEN_FILE,
GENESYS_CA_CERT ...). With --gateway the budget page adds the gateway's LLM usage.
Once listening it prints `genesys-ui ready url=http://HOST:PORT/`.
"""

from __future__ import annotations

import socket

import click

READY = "genesys-ui ready url="


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise click.BadParameter(f"{listen!r} is not HOST:PORT", param_hint="--listen")
    return host.strip("[]") or "127.0.0.1", int(port)


@click.command("ui")
@click.option("--coordinator", "--address", "address", envvar="GENESYS_COORDINATOR", default=None,
              help="Coordinator host:port (env GENESYS_COORDINATOR; default: the local "
                   "server's data dir, else 127.0.0.1:50051).")
@click.option("--listen", envvar="GENESYS_UI_LISTEN", default="127.0.0.1:8080", show_default=True,
              help="HOST:PORT the web app listens on (port 0: any free port).")
@click.option("--token", envvar="GENESYS_TOKEN", default=None,
              help="Bearer token for reads (env GENESYS_TOKEN; a submitter token is enough).")
@click.option("--config", "config_path", envvar="GENESYS_CONFIG", default=None,
              type=click.Path(dir_okay=False), help="Client config TOML (env GENESYS_CONFIG).")
@click.option("--gateway", envvar="GENESYS_LLM_ADDRESS", default=None,
              help="LLM gateway host:port whose token accounting the budget page shows "
                   "(env GENESYS_LLM_ADDRESS; token: GENESYS_LLM_TOKEN).")
def ui_cmd(address: str | None, listen: str, token: str | None, config_path: str | None,
           gateway: str | None) -> None:
    """Serve the live web dashboard of the coordinator's experiments."""
    try:
        import uvicorn

        from .app import create_app
    except ImportError as e:
        raise click.ClickException(f"the dashboard needs its extra: pip install 'genesys[dashboard]' "
                                   f"({e})") from None
    from genesys.client.coordinator import Coordinator, client_config
    from genesys.client.llm import LLM
    from genesys.config import ConfigError

    host, port = parse_listen(listen)
    try:
        cfg = client_config(config_path)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    client = Coordinator(address, token, config=cfg, retries=2, timeout=min(cfg.timeout, 15.0))

    def admin_client(admin_token: str) -> Coordinator:
        # same address and TLS settings, the browser's token (never the dashboard's own)
        return Coordinator(client.address, admin_token, config=cfg, retries=1)

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        raise click.ClickException(f"cannot listen on {listen}: {e.strerror}") from None
    sock.listen(1024)  # connections wait in the backlog until uvicorn accepts them
    bound_port = sock.getsockname()[1]
    llm = LLM(gateway) if gateway else None
    server = uvicorn.Server(uvicorn.Config(create_app(client, admin_client, gateway=llm), log_level="warning",
                                           timeout_graceful_shutdown=3))
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"{READY}http://{shown}:{bound_port}/ coordinator={client.address}")
    try:
        server.run(sockets=[sock])
    finally:
        client.close()
        if llm is not None:
            llm.close()
