"""A cluster on one machine, set up as deploy/README.md says: a TLS coordinator (certificates
from deploy/tls/make-certs.sh), a gateway on another port, two agents with their own work
dirs and worker tokens, all started through the images' entrypoint, finishing a small
experiment (the seeds and one recombined child, checked in the sandbox and verified).

The verify agent simulates training (`--dry-run`): what is under test is the deployment
(TLS, tokens, leases, results crossing processes), not the trainer, which tests/verify covers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from agent.procs import free_tcp_port, wait_for
from genesys.client.llm import LLM
from genesys.v1 import experiment_pb2, job_pb2

from .conftest import DEPLOY, tool_env

pytestmark = pytest.mark.slow
FAKE_OPENAI = Path(__file__).resolve().parents[1] / "gateway/fake_openai.py"


def _entrypoint(role: str, env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(["sh", str(DEPLOY / "docker/entrypoint.sh"), role, *args],
                                env=tool_env(**env), stdout=out, stderr=subprocess.STDOUT)


def _stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _make_token(coordinator, name: str, out: Path) -> None:
    env = {"GENESYS_COORDINATOR": coordinator.address, "GENESYS_CA_CERT": str(coordinator.ca),
           "GENESYS_TOKEN_FILE": str(coordinator.data_dir / "token"), "GENESYS_NEW_TOKEN_NAME": name,
           "GENESYS_NEW_TOKEN_ROLE": "worker", "GENESYS_NEW_TOKEN_OUT": str(out)}
    for _ in range(2):  # the second run keeps the token it finds
        run = subprocess.run(["sh", str(DEPLOY / "docker/entrypoint.sh"), "token"], env=tool_env(**env),
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
    assert "token already at" in run.stdout
    assert out.stat().st_mode & 0o077 == 0


def _config() -> experiment_pb2.ExperimentConfig:
    config = experiment_pb2.ExperimentConfig()
    config.ladder.rungs.add(name="micro", budget=3, lease_seconds=60)
    config.jobs.lease_seconds = 60
    config.design_mix.max_designs = 3  # two seeds + one child
    return config


def test_two_agents_and_a_gateway_finish_an_experiment_over_tls(tls_coordinator, tmp_path: Path):
    model_port, gateway_port = free_tcp_port(), free_tcp_port()
    fake = subprocess.Popen([sys.executable, str(FAKE_OPENAI), "--port", str(model_port), "--name", "m"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gateway_config = tmp_path / "gateway.toml"
    gateway_config.write_text(
        f'listen = "127.0.0.1:{gateway_port}"\ndata_dir = "{tmp_path / "gateway"}"\n'
        f'[roles]\ncoder = "m"\n[models.m]\nserved_name = "fake"\nendpoints = ["http://127.0.0.1:{model_port}"]\n')
    certs = tls_coordinator.certs  # the gateway serves TLS with the same CA, as in compose
    gateway = _entrypoint("gateway", {"GENESYS_CONFIG_FILE": str(gateway_config),
                                      "GENESYS_TLS_CERT": str(certs / "server.pem"),
                                      "GENESYS_TLS_KEY": str(certs / "server.key")}, tmp_path / "gateway.log")

    agents = []
    for name, role, extra in (("verifier", "verify", ("--dry-run", "1")), ("designer", "design", ())):
        token = tmp_path / f"{name}.token"
        if name == "verifier":  # the compose file's one-shot token service
            _make_token(tls_coordinator, name, token)
        else:  # the guide's step 2
            token.write_text(tls_coordinator.cli("token", "create", name, "--role", "worker").strip())
            os.chmod(token, 0o600)
        env = {"GENESYS_COORDINATOR": tls_coordinator.address, "GENESYS_TOKEN_FILE": str(token),
               "GENESYS_CA_CERT": str(tls_coordinator.ca), "GENESYS_AGENT_ROLES": role,
               "GENESYS_AGENT_GPUS": "none", "GENESYS_WORK_DIR": str(tmp_path / name),
               "GENESYS_DATA_DIR": str(tmp_path / "data"),
               "GENESYS_LLM_ADDRESS": f"127.0.0.1:{gateway_port}"}
        agents.append(_entrypoint("agent", env, tmp_path / f"{name}.log", "--threads", "1", "--name", name, *extra))
    try:
        client = tls_coordinator.client()
        logs = lambda: "\n".join(p.read_text()[-1500:] for p in tmp_path.glob("*.log"))  # noqa: E731
        client.create_experiment("cluster", _config(), seeds=["gpt", "retnet"])

        def finished() -> bool:
            dead = [proc.args for proc in agents if proc.poll() is not None]
            assert not dead, f"an agent exited early: {dead}\n{logs()}"
            designs = client.list_designs("cluster")
            jobs = client.list_jobs(experiment="cluster")
            open_jobs = [j for j in jobs if j.state in (job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_LEASED)]
            return (len(designs) == 3 and not open_jobs
                    and all(any(r.rung == "micro" for r in d.results) for d in designs))

        wait_for(finished, 240, "the experiment to finish")
        designs = client.list_designs("cluster")
        child = next(d for d in designs if not d.seed)
        assert child.parents, logs()
        names = {w.id: w.name for w in client.list_workers()}
        jobs = client.list_jobs(experiment="cluster")
        assert all(j.state == job_pb2.JOB_STATE_SUCCEEDED for j in jobs), [j.state for j in jobs]
        ran = {(j.kind, names[j.worker_id]) for j in jobs}
        assert ran == {(job_pb2.JOB_KIND_DESIGN, "designer"), (job_pb2.JOB_KIND_VERIFY, "verifier")}
        # the gateway answers an agent's token-less call on its own port, as designers reach it
        reply = LLM(f"127.0.0.1:{gateway_port}", caller="verifier",
                    tls_ca=str(tls_coordinator.ca)).chat("ping", role="coder")
        assert "ping" in reply.text
    finally:
        _stop(*agents, gateway, fake)
    for proc, name in zip(agents, ("verifier", "designer"), strict=True):
        assert proc.returncode == 0, (tmp_path / f"{name}.log").read_text()[-3000:]
