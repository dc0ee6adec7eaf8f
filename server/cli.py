"""`genesys server start`: run the coordinator in the foreground until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import sys

import click


@click.command("start")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              envvar="GENESYS_SERVER_CONFIG", help="Coordinator TOML file (see server/README.md).")
@click.option("--listen", default=None, help="host:port to serve on (port 0: a free one). "
              "[default: 127.0.0.1:50051]")
@click.option("--store", "store_url", default=None,
              help="Store URL: sqlite:///PATH or mongodb://... [default: SQLite in the data dir]")
@click.option("--data-dir", default=None, help="Where the SQLite store, address and local token "
              "live. [default: .genesys]")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
def start_cmd(config_path: str | None, listen: str | None, store_url: str | None,
              data_dir: str | None, log_level: str) -> None:
    """Start the coordinator (prints 'genesys-coordinator ready address=HOST:PORT')."""
    from genesys.config import ConfigError

    from .app import serve
    from .config import load_server_config

    try:
        config = load_server_config(config_path, listen=listen, data_dir=data_dir,
                                    **{"store.url": store_url})
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    logging.basicConfig(stream=sys.stderr, level=log_level,
                        format="%(asctime)s level=%(levelname)s %(message)s")

    def ready(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    try:
        asyncio.run(serve(config, ready))
    except (OSError, ValueError) as e:
        raise click.ClickException(str(e)) from None
