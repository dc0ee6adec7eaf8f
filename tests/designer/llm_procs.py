"""The scripted model server behind the real gateway, one served model per designer role."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from agent.procs import CoordinatorProcess, free_tcp_port
from gateway.conftest import (
    BASE,
    GENESYS,
    free_port,
    models_toml,
    stop,
    wait_grpc_serving,
    wait_http,
)

SCRIPTED = Path(__file__).with_name("scripted_openai.py")
ROLES = ("proposer", "reviewer", "planner", "coder", "observer")


class Scripted:
    def __init__(self, url: str, gateway: str):
        self.url, self.gateway = url, gateway

    def requests(self, model: str | None = None) -> list[dict]:
        got = httpx.get(f"{self.url}/requests", timeout=5).json()["requests"]
        return [r for r in got if model is None or r["model"] == model]


def gateway_config(url: str) -> str:
    text = BASE + "retry_attempts = 1\n"
    text += "".join(models_toml(role, [url], served_name=role, max_context=16384) for role in ROLES)
    return text + "[roles]\n" + "".join(f'{role} = "{role}"\n' for role in ROLES)


@pytest.fixture(scope="session")
def scripted_service(tmp_path_factory) -> Iterator[Scripted]:
    """One scripted server behind one real gateway for the whole session."""
    folder = tmp_path_factory.mktemp("scripted")
    port = free_port()
    server = subprocess.Popen([sys.executable, str(SCRIPTED), "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    gateway, address = None, f"127.0.0.1:{free_port()}"
    try:
        wait_http(f"{url}/health")
        config = folder / "gateway.toml"
        config.write_text(gateway_config(url))
        with open(folder / "gateway.log", "wb") as log:
            gateway = subprocess.Popen([*GENESYS, "gateway", "start", "--config", str(config),
                                        "--listen", address, "--data-dir", str(folder / "data")],
                                       stdout=log, stderr=subprocess.STDOUT)
        wait_grpc_serving(address, gateway)
        yield Scripted(url, address)
    finally:
        for proc in (gateway, server):
            if proc is not None:
                stop(proc)


@pytest.fixture
def scripted(scripted_service: Scripted) -> Callable[[dict], Scripted]:
    """scripted({role: [answers]}) -> the scripted server (behind the gateway) with that script."""

    def load(script: dict[str, list[dict]]) -> Scripted:
        httpx.post(f"{scripted_service.url}/script", json=script, timeout=5).raise_for_status()
        return scripted_service

    return load


@pytest.fixture
def coordinator(tmp_path: Path) -> Iterator[CoordinatorProcess]:
    proc = CoordinatorProcess(tmp_path / "coord", free_tcp_port())
    proc.start()
    yield proc
    proc.stop()
