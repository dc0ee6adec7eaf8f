"""Fixtures for the deploy tests: certificates from deploy/tls/make-certs.sh and a TLS
coordinator started through the images' entrypoint, as the deploy guide does it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent.procs import SERVER_ENV, CoordinatorProcess, free_tcp_port
from genesys.client.coordinator import Coordinator

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
BIN = Path(sys.executable).parent


def tool_env(**extra: str) -> dict[str, str]:
    """The environment for deploy scripts: `genesys` of this venv first on PATH."""
    return os.environ | {"PATH": f"{BIN}:{os.environ['PATH']}"} | extra


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    subprocess.run(["sh", str(DEPLOY / "tls/make-certs.sh"), str(out), "localhost", "127.0.0.1"],
                   check=True, capture_output=True, env=tool_env(GENESYS_CERT_OWNER=str(os.getuid())))
    return out


class TlsCoordinator(CoordinatorProcess):
    """The coordinator image's entrypoint (`entrypoint.sh coordinator`) with TLS, on 127.0.0.1."""

    def __init__(self, root: Path, port: int, certs: Path):
        super().__init__(root / "data", port)
        self.config, self.certs = root / "coordinator.toml", certs
        self.ca = certs / "ca.pem"

    def command(self) -> tuple[list[str], dict[str, str]]:
        self.config.write_text(f'listen = "{self.address}"\n')
        env = tool_env(**SERVER_ENV, GENESYS_CONFIG_FILE=str(self.config),
                       GENESYS_DATA_DIR=str(self.data_dir),
                       GENESYS_TLS_CERT=str(self.certs / "server.pem"),
                       GENESYS_TLS_KEY=str(self.certs / "server.key"))
        return ["sh", str(DEPLOY / "docker/entrypoint.sh"), "coordinator"], env

    def client(self, token: str | None = None) -> Coordinator:
        return Coordinator(self.address, token or self.token, ca_cert=str(self.ca), timeout=10.0)

    def cli(self, *args: str) -> str:
        """`genesys ARGS` against this coordinator with the admin token, as an operator runs it."""
        env = tool_env(GENESYS_COORDINATOR=self.address, GENESYS_TOKEN=self.token,
                       GENESYS_CA_CERT=str(self.ca))
        return subprocess.run(["genesys", *args], env=env, check=True, capture_output=True,
                              text=True, timeout=60).stdout


@pytest.fixture(scope="module")
def tls_coordinator(tmp_path_factory, certs: Path) -> Iterator[TlsCoordinator]:
    coordinator = TlsCoordinator(tmp_path_factory.mktemp("coordinator"), free_tcp_port(), certs)
    coordinator.start(timeout=60)
    yield coordinator
    coordinator.stop()
