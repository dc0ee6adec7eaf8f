"""The scripted model server behind the real gateway, one served model per designer role."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from agent.procs import CoordinatorProcess, free_tcp_port
from gateway.conftest import BASE, free_port, models_toml, stop, wait_http

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


@pytest.fixture
def scripted(tmp_path: Path, gateway) -> Iterator[Callable[[dict], Scripted]]:
    """scripted({role: [answers]}) -> a running scripted server behind a real gateway."""
    procs = []

    def start(script: dict[str, list[dict]]) -> Scripted:
        path = tmp_path / f"script{len(procs)}.json"
        path.write_text(json.dumps(script))
        port = free_port()
        proc = subprocess.Popen([sys.executable, str(SCRIPTED), "--port", str(port), "--script", str(path)])
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health")
        return Scripted(url, gateway(gateway_config(url)).address)

    yield start
    for proc in procs:
        stop(proc)


@pytest.fixture
def coordinator(tmp_path: Path) -> Iterator[CoordinatorProcess]:
    proc = CoordinatorProcess(tmp_path / "coord", free_tcp_port())
    proc.start()
    yield proc
    proc.stop()
