"""The agent against a real coordinator: crashes, outages, drains, cancels, bad credentials.

VERIFY jobs are simulated (``--dry-run S``: S seconds of steps with a resumable checkpoint)
so that these tests exercise the lease protocol, not training; tests/e2e runs the real
engine.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from genesys.v1 import job_pb2

from .procs import AgentProcess, free_tcp_port, verify_only_config, wait_for

pytestmark = pytest.mark.slow


def _leased_verify(client, experiment: str) -> job_pb2.Job | None:
    jobs = client.list_jobs(experiment=experiment, kind="verify", state="leased")
    return jobs[0] if jobs else None


def _checkpoint_step(agent: AgentProcess, job_id: str) -> int:
    path = agent.work_dir / "jobs" / job_id / "run" / "dry-run.json"
    try:
        return json.loads(path.read_text())["step"]
    except (OSError, ValueError):
        return 0


def _succeeded(client, job_id: str) -> job_pb2.Job | None:
    job = client.get_job(job_id)
    return job if job.state == job_pb2.JOB_STATE_SUCCEEDED else None


def _running_job(coordinator, agents, experiment: str, lease_s: int, dry_run_s: float,
                 min_step: int = 1):
    """An experiment with one seed and an agent training it: (client, agent, leased job)."""
    client = coordinator.client()
    client.create_experiment(experiment, verify_only_config(lease_s=lease_s), seeds=["gpt"])
    agent = agents("a", "--dry-run", str(dry_run_s))
    job = wait_for(lambda: _leased_verify(client, experiment), 60, "a leased VERIFY job")
    if min_step:
        wait_for(lambda: _checkpoint_step(agent, job.id) >= min_step, 90, "training progress")
    return client, agent, job


def _completions(agent: AgentProcess, job_id: str) -> int:
    return sum("event=job_completed" in line and f"job={job_id}" in line
               for line in agent.output().splitlines())


def test_killed_agent_job_is_leased_again_and_completed_once(coordinator, agents):
    client, first, job = _running_job(coordinator, agents, "kill9", lease_s=4, dry_run_s=30)
    first.kill9()
    killed_at = time.monotonic()
    second = agents("b", "--dry-run", "2")
    done = wait_for(lambda: _succeeded(client, job.id), 60, "the job to complete")
    assert time.monotonic() - killed_at >= 3  # not before the 4 s lease ran out
    assert done.attempt == 2 and done.worker_id != job.worker_id
    assert len(client.list_jobs(experiment="kill9", kind="verify", limit=100)) == 1
    design = client.get_design(job.design_id)
    assert [r.rung for r in design.results] == ["micro"]
    assert design.results[0].job_id == job.id
    assert _completions(second, job.id) == 1 and _completions(first, job.id) == 0


def test_result_finished_during_outage_arrives_once_after_restart(coordinator, agents):
    # min_step=1: the job has fetched its design and started; killed earlier, the agent
    # rightly waits for the coordinator to fetch it, and nothing finishes while down
    client, agent, job = _running_job(coordinator, agents, "outage", lease_s=90, dry_run_s=5,
                                      min_step=1)
    coordinator.kill()
    down_at = time.monotonic()
    wait_for(lambda: "event=job_finished" in agent.output(), 30, "the job to finish while down")
    assert list((agent.work_dir / "outbox").glob("*.json")), "the result waits in the outbox"
    time.sleep(max(0.0, 20.0 - (time.monotonic() - down_at)))
    assert agent.proc.poll() is None, "the agent survives the outage"
    coordinator.start()
    client = coordinator.client()
    done = wait_for(lambda: _succeeded(client, job.id), 60, "the result after the restart")
    assert done.attempt == 1 and done.worker_id == job.worker_id
    assert len(client.get_design(job.design_id).results) == 1
    wait_for(lambda: not list((agent.work_dir / "outbox").glob("*.json")), 10, "an empty outbox")
    assert _completions(agent, job.id) == 1
    assert "event=report_retry" in agent.output() or "event=report_failed" in agent.output()


def test_sigterm_drains_and_the_job_resumes_from_its_checkpoint(coordinator, agents):
    client, agent, job = _running_job(coordinator, agents, "drain", lease_s=30, dry_run_s=8,
                                      min_step=2)
    agent.proc.send_signal(signal.SIGTERM)
    assert agent.wait(30) == 0
    assert "event=job_released" in agent.output()
    handed_back = client.get_job(job.id)
    assert handed_back.state == job_pb2.JOB_STATE_QUEUED and handed_back.attempt == 0
    restarted = agents("a", "--dry-run", "8")  # same work dir: same worker, same checkpoint
    done = wait_for(lambda: _succeeded(client, job.id), 60, "the resumed job to complete")
    report = json.loads(json.loads(done.result_json)["metricsJson"])
    assert report["resumed_from_step"] >= 2
    assert restarted.proc.poll() is None


def test_cancelled_job_stops_its_child_promptly(coordinator, agents):
    client, agent, job = _running_job(coordinator, agents, "cancel", lease_s=30, dry_run_s=60)
    client.cancel_job(job.id, "not needed")
    wait_for(lambda: "dropped (cancelled)" in agent.output(), 10, "the agent to stop the job")
    assert client.get_job(job.id).state == job_pb2.JOB_STATE_CANCELLED
    assert agent.proc.poll() is None


def test_wrong_token_is_reported_and_exits_nonzero(coordinator, agents):
    agent = agents("bad", token="t000000000000.not-the-secret")
    assert agent.wait(30) == 1
    assert "refused the token" in agent.output()


def test_wrong_address_is_reported_and_exits_nonzero(tmp_path: Path):
    agent = AgentProcess(f"127.0.0.1:{free_tcp_port()}", "tx.y", tmp_path / "lost",
                         "--connect-timeout", "2").start()
    assert agent.wait(30) == 1
    assert "cannot reach the coordinator" in agent.output()


def test_saved_worker_id_of_another_token_is_replaced(coordinator, agents):
    first = agents("a")
    wait_for(lambda: "event=registered" in first.output(), 30, "the first registration")
    first.terminate()
    other = coordinator.client().create_token("other-agents", "worker").token
    second = agents("a", token=other)  # same work dir: finds the first worker's id
    wait_for(lambda: second.output().count("event=registered") == 2, 30, "a new registration")
    assert "event=worker_id_dropped" in second.output()
    assert second.proc.poll() is None


def test_sigterm_drains_promptly_while_the_coordinator_is_down(coordinator, agents):
    agent = agents("a")
    wait_for(lambda: "event=registered" in agent.output(), 30, "the registration")
    coordinator.kill()
    wait_for(lambda: "event=lease_error" in agent.output(), 30, "the outage to be noticed")
    agent.proc.send_signal(signal.SIGTERM)
    assert agent.wait(20) == 0
    assert "event=stopped" in agent.output()
