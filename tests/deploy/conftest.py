"""Fixtures for the deploy tests: certificates from deploy/tls/make-certs.sh and a TLS
coordinator started through the images' entrypoint, as the deploy guide does it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from agent.procs import READY, SERVER_ENV, free_tcp_port
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


@dataclass
class TlsCoordinator:
    address: str
    data_dir: Path
    ca: Path
    proc: subprocess.Popen

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "token").read_text().strip()

    def client(self, token: str | None = None) -> Coordinator:
        return Coordinator(self.address, token or self.admin_token, ca_cert=str(self.ca), timeout=10.0)

    def cli(self, *args: str) -> str:
        """`genesys ARGS` against this coordinator with the admin token, as an operator runs it."""
        env = tool_env(GENESYS_COORDINATOR=self.address, GENESYS_TOKEN=self.admin_token,
                       GENESYS_CA_CERT=str(self.ca))
        return subprocess.run(["genesys", *args], env=env, check=True, capture_output=True,
                              text=True, timeout=60).stdout


@pytest.fixture(scope="module")
def tls_coordinator(tmp_path_factory, certs: Path) -> Iterator[TlsCoordinator]:
    root = tmp_path_factory.mktemp("coordinator")
    config = root / "coordinator.toml"
    address = f"127.0.0.1:{free_tcp_port()}"
    config.write_text(f'listen = "{address}"\n')
    env = tool_env(**SERVER_ENV, GENESYS_CONFIG_FILE=str(config), GENESYS_DATA_DIR=str(root / "data"),
                   GENESYS_TLS_CERT=str(certs / "server.pem"), GENESYS_TLS_KEY=str(certs / "server.key"))
    log = open(root / "coordinator.log", "wb")
    proc = subprocess.Popen(["sh", str(DEPLOY / "docker/entrypoint.sh"), "coordinator"], env=env,
                            stdout=subprocess.PIPE, stderr=log, text=True)
    ready = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            if line.startswith(READY):
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(60):
        proc.kill()
        raise AssertionError((root / "coordinator.log").read_text()[-3000:])
    yield TlsCoordinator(address, root / "data", certs / "ca.pem", proc)
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
