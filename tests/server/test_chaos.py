"""Chaos: a small real experiment with several agents (simulated VERIFY jobs), while the
coordinator and random agents are SIGKILLed again and again. Afterwards the invariants
hold (budget, no job completed twice, every SUCCEEDED job's result on its design, no
design verified twice at one rung) and every agent's outbox is drained. SQLite always;
MongoDB too where GENESYS_TEST_MONGO_URI is set."""

from __future__ import annotations

import os
import random
import time
import uuid

import pytest
from agent.procs import AgentProcess, CoordinatorProcess, free_tcp_port, wait_for
from genesys.client import CoordinatorError
from genesys.v1 import job_pb2

from .invariants import check_invariants
from .test_leases import make_exp

MONGO_URI = os.environ.get("GENESYS_TEST_MONGO_URI", "")
SEEDS = ("gpt", "retnet", "ttt", "rwkv6", "mamba2")
pytestmark = pytest.mark.slow


class Coordinator(CoordinatorProcess):
    def __init__(self, data_dir, port, store_url: str):
        super().__init__(data_dir, port)
        self.store_url = store_url

    def command(self):
        cmd, env = super().command()
        return cmd, {**env, "GENESYS_STORE_URL": self.store_url,
                     "GENESYS_SCHEDULER_RECONCILE_GRACE_SECONDS": "5"}


def succeeded(client, experiment: str) -> int:
    try:
        return len(client.list_jobs(experiment, state="succeeded", kind="verify"))
    except CoordinatorError:
        return 0  # the coordinator is down right now


@pytest.mark.parametrize("store", [
    "sqlite",
    pytest.param("mongo", marks=[pytest.mark.mongo, pytest.mark.skipif(
        not MONGO_URI, reason="no GENESYS_TEST_MONGO_URI: set it to run chaos on MongoDB")]),
])
def test_sigkill_chaos_keeps_the_invariants(searchable_tmp_path, store):
    url = "" if store == "sqlite" else (MONGO_URI.rstrip("/") + f"/chaos_{uuid.uuid4().hex[:8]}")
    coordinator = Coordinator(searchable_tmp_path / "coordinator", free_tcp_port(), url)
    coordinator.start()
    client = coordinator.client()
    make_exp(client, "chaos", lease_seconds=3, max_attempts=50, ladder="micro:5", seeds=SEEDS)
    cfg = client.get_experiment("chaos").config
    cfg.design_mix.max_designs = len(SEEDS)  # VERIFY jobs only
    client.update_experiment("chaos", cfg)
    worker_token = client.create_token("agents", "worker").token
    agents = [AgentProcess(coordinator.address, worker_token, searchable_tmp_path / f"a{i}",
                           "--dry-run", "1.5").start() for i in range(3)]
    rng = random.Random(16)
    try:
        stop = time.monotonic() + 12
        while time.monotonic() < stop and succeeded(client, "chaos") < len(SEEDS):
            time.sleep(rng.uniform(1.5, 3.0))
            if rng.random() < 0.4:
                coordinator.kill()
                time.sleep(rng.uniform(0.2, 1.0))
                coordinator.start()
            else:
                victim = rng.choice(agents)
                victim.kill9()
                victim.start()
        wait_for(lambda: succeeded(client, "chaos") == len(SEEDS), 90,
                 "every seed verified once the chaos stops")
        for agent in agents:
            agent.terminate()
        for agent in agents:
            assert not list((agent.work_dir / "outbox").glob("*.json")), "outbox drained"
        check_invariants(client, "chaos")
        micro = client.get_budget("chaos").ledger.rungs[0]
        assert (micro.committed, micro.reserved) == (len(SEEDS), 0)
        jobs = client.list_jobs("chaos", kind="verify", limit=1000)
        assert all(j.state in (job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_CANCELLED)
                   for j in jobs), [job_pb2.JobState.Name(j.state) for j in jobs]
    finally:
        for agent in agents:
            if agent.proc.poll() is None:
                agent.kill9()
        coordinator.stop()
