"""Launched replicas: the gateway starts server processes, health-checks them and restarts
them with backoff. A stand-in `vllm` package runs the fake server, so no vLLM is needed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from genesys.client.llm import LLM
from genesys.v1 import llm_gateway_pb2 as pb

from .conftest import BASE, FAKE, GENESYS

STUB = """import os, runpy, sys
port = sys.argv[sys.argv.index("--port") + 1]
open(os.path.join(os.environ["FAKE_PID_DIR"], port), "w").write(str(os.getpid()))
sys.argv[0] = {fake!r}
runpy.run_path({fake!r}, run_name="__main__")
"""


@pytest.fixture
def fake_vllm(tmp_path: Path) -> Path:
    """A folder holding a `vllm.entrypoints.openai.api_server` module that runs the fake server."""
    root = tmp_path / "stub"
    package = root / "vllm" / "entrypoints" / "openai"
    package.mkdir(parents=True)
    for folder in (root / "vllm", root / "vllm" / "entrypoints", package):
        (folder / "__init__.py").write_text("")
    (package / "api_server.py").write_text(STUB.format(fake=str(FAKE)))
    return root


def launch_toml(stub: Path, pid_dir: Path, replicas: int) -> str:
    return BASE + f"""
[models.fake]
max_context = 512
default_max_tokens = 16
[models.fake.launch]
python = "{sys.executable}"
model = "any"
replicas = {replicas}
env = {{ PYTHONPATH = "{stub}", FAKE_PID_DIR = "{pid_dir}" }}
"""


def replicas(llm: LLM) -> list[pb.ReplicaInfo]:
    return list(llm.models()[0].replicas)


def wait_healthy(llm: LLM, count: int, timeout: float = 30.0) -> list[pb.ReplicaInfo]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        current = replicas(llm)
        if sum(r.state == pb.REPLICA_STATE_HEALTHY for r in current) == count:
            return current
        time.sleep(0.1)
    raise TimeoutError(f"replicas never all healthy: {current}")


def test_launched_replicas_are_supervised_and_restarted(fake_vllm, gateway, tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    gw = gateway(launch_toml(fake_vllm, pid_dir, replicas=2))
    with LLM(gw.address) as llm:
        first = wait_healthy(llm, 2)
        assert all(r.launched for r in first)
        assert llm.chat("hello").text == "[fake] echo: hello"
        victim = first[0].url.rsplit(":", 1)[1]
        old_pid = int((pid_dir / victim).read_text())
        os.kill(old_pid, signal.SIGKILL)
        for i in range(10):  # served by the other replica meanwhile
            assert llm.chat(f"during {i}").text == f"[fake] echo: during {i}"
        wait_healthy(llm, 2, timeout=30)  # restarted after a short backoff
        assert int((pid_dir / victim).read_text()) != old_pid
    log = gw.log.read_text()
    assert "event=vllm_start" in log and "state=stopped" in log


def test_missing_vllm_says_what_to_install(tmp_path):
    config = tmp_path / "gw.toml"
    config.write_text(f'[models.m.launch]\npython = "{sys.executable}"\nmodel = "x"\n')
    result = subprocess.run([*GENESYS, "gateway", "start", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "vLLM is not installed" in result.stderr and "genesys gateway prepare-vllm" in result.stderr


def test_unprepared_default_model_says_how_to_prepare(tmp_path):
    config = tmp_path / "gw.toml"
    config.write_text(f'[models.smollm2.launch]\npython = "{sys.executable}"\n')
    result = subprocess.run([*GENESYS, "gateway", "start", "--config", str(config),
                             "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "genesys gateway prepare-model smollm2" in result.stderr
