"""Real processes on 127.0.0.1: fake OpenAI servers and the gateway itself."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

FAKE = Path(__file__).with_name("fake_openai.py")
GENESYS = [sys.executable, "-c", "from genesys.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not come up")


def wait_grpc_serving(address: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {proc.returncode}")
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"gateway at {address} did not become SERVING")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Fake:
    def __init__(self, proc: subprocess.Popen, port: int) -> None:
        self.proc, self.port, self.url = proc, port, f"http://127.0.0.1:{port}"

    def requests(self) -> int:
        return httpx.get(f"{self.url}/stats", timeout=2).json()["chat_requests"]

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def fake_server() -> Iterator[Callable[..., Fake]]:
    """Start fake OpenAI servers: fake_server(name="a", delay=0.1, fail_status=500, ...)."""
    procs = []

    def start(**options) -> Fake:
        port = free_port()
        args = [sys.executable, str(FAKE), "--port", str(port)]
        for key, value in options.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        proc = subprocess.Popen(args)
        procs.append(proc)
        fake = Fake(proc, port)
        wait_http(f"{fake.url}/health")
        return fake

    yield start
    for proc in procs:
        stop(proc)


class GatewayProc:
    def __init__(self, proc: subprocess.Popen, address: str, log: Path) -> None:
        self.proc, self.address, self.log = proc, address, log


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Callable[..., GatewayProc]]:
    """Start `genesys gateway start` with a TOML config text; returns its address and log."""
    procs = []

    def start(config_text: str | None, env: dict[str, str] | None = None, timeout: float = 60.0,
              data_dir: Path | None = None) -> GatewayProc:
        """config_text None: the embedded default config."""
        args = []
        if config_text is not None:
            config = tmp_path / f"gateway{len(procs)}.toml"
            config.write_text(config_text)
            args = ["--config", str(config)]
        address = f"127.0.0.1:{free_port()}"
        log = tmp_path / f"gateway{len(procs)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [*GENESYS, "gateway", "start", *args, "--listen", address,
                 "--data-dir", str(data_dir or tmp_path / "data")],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
            )
        procs.append(proc)
        try:
            wait_grpc_serving(address, proc, timeout)
        except Exception as exc:
            raise RuntimeError(f"{exc}\n{log.read_text()[-3000:]}") from exc
        return GatewayProc(proc, address, log)

    yield start
    for proc in procs:
        stop(proc)


def models_toml(name: str, urls: list[str], **options) -> str:
    lines = [f"[models.{name}]", "endpoints = [" + ", ".join(f'"{u}"' for u in urls) + "]"]
    lines += [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in options.items()]
    return "\n".join(lines).replace("'", '"') + "\n"


BASE = "health_interval_s = 0.5\nretry_backoff_s = 0.05\n"
