"""deploy/slurm: the sbatch script's body on a fake Slurm node against a real coordinator.

`srun` is a stand-in that runs the task once (one node); the allocation "ends" a few
seconds after the start, so the agent must drain before it: the running job is handed
back (QUEUED, attempt not counted), not lost with the allocation."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from agent.procs import verify_only_config, wait_for
from genesys.v1 import job_pb2

from .conftest import DEPLOY, tool_env

pytestmark = pytest.mark.slow


def _fake_srun(folder: Path) -> Path:
    srun = folder / "srun"
    srun.write_text('#!/bin/sh\n# one node: drop srun options, run the task\n'
                    'while [ "${1#-}" != "$1" ]; do shift; done\nexec "$@"\n')
    srun.chmod(0o755)
    return folder


def test_agent_on_a_slurm_node_drains_before_the_time_limit(tls_coordinator, tmp_path: Path):
    client = tls_coordinator.client()
    client.create_experiment("slurm", verify_only_config(lease_s=30), seeds=["gpt"])
    token = tmp_path / "worker_token"
    token.write_text(tls_coordinator.cli("token", "create", "slurm-agents", "--role", "worker").strip())
    end = int(time.time()) + 40
    env = tool_env(
        PATH=f"{_fake_srun(tmp_path)}:{tool_env()['PATH']}",
        SLURM_JOB_ID="4242", SLURMD_NODENAME="node7", SLURM_JOB_END_TIME=str(end),
        SLURM_SUBMIT_DIR=str(DEPLOY.parent), TMPDIR=str(tmp_path),
        GENESYS_COORDINATOR=tls_coordinator.address, GENESYS_TOKEN_FILE=str(token),
        GENESYS_CA_CERT=str(tls_coordinator.ca), GENESYS_DRAIN_MARGIN_S="25",
        GENESYS_DRAIN_GRACE_S="10", GENESYS_AGENT_GPUS="none", GENESYS_DATA_DIR=str(tmp_path / "data"))
    log = tmp_path / "slurm.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["bash", str(DEPLOY / "slurm/genesys-agents.sbatch"),
                                 "--threads", "1", "--dry-run", "120"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        job = wait_for(lambda: next((j for j in client.list_jobs(experiment="slurm", kind="verify")
                                     if j.state == job_pb2.JOB_STATE_LEASED), None), 40, "a leased job")
        worker = next(w for w in client.list_workers() if w.id == job.worker_id)
        assert worker.name == "slurm-4242-node7"
        assert proc.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.time() < end, "the agent must be gone before the allocation ends"
    text = log.read_text()
    assert "draining the agent" in text and "agent exited with status 0" in text
    handed_back = client.get_job(job.id)
    assert handed_back.state == job_pb2.JOB_STATE_QUEUED and handed_back.attempt == 0
