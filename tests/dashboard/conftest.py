"""One real coordinator with a small experiment made through the SDK (seeds verified by a
simulated worker that leases, reports progress and completes jobs; one LLM-made child with
a trace, a check report and training curves; one job left running), and `genesys ui`
serving it with a read-only (submitter) token. Shared by the HTTP and browser tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from agent.procs import CoordinatorProcess, free_tcp_port
from genesys.client.coordinator import Coordinator, LeasedJob
from genesys.v1 import design_pb2, evolution_pb2, experiment_pb2

EXPERIMENT = "dash"
CLI = [sys.executable, "-c", "from genesys.cli import main; main()"]
READY = "genesys-ui ready url="


@dataclass
class World:
    coordinator: CoordinatorProcess
    admin: Coordinator            # admin token
    worker: Coordinator           # worker token, registered
    submitter_token: str
    seeds: list[str]
    child: str                    # the LLM-made design with curves and a trace
    running: LeasedJob            # a VERIFY job left leased
    extra: dict = field(default_factory=dict)


def experiment_config() -> experiment_pb2.ExperimentConfig:
    config = experiment_pb2.ExperimentConfig()
    config.ladder.rungs.add(name="micro", budget=8, lease_seconds=600)
    config.ladder.rungs.add(name="tiny", budget=2, lease_seconds=600)
    config.jobs.lease_seconds = 600
    config.design_mix.max_designs = 1  # no DESIGN jobs: the test makes its designs itself
    config.benchmarks.add(name="cloze", random_baseline=0.0)
    config.benchmarks.add(name="val_loss", random_baseline=9.0, lower_is_better=True)
    config.seeds.extend(["gpt", "retnet", "mamba2"])
    return config


def curve(start: float, n: int, every: int) -> list[design_pb2.CurvePoint]:
    return [design_pb2.CurvePoint(step=i * every, loss=start / (1 + 0.3 * i), tokens=i * every * 512)
            for i in range(n)]


def child_trace() -> design_pb2.DesignTrace:
    report = {"valid": True, "digest": "x", "params": 1_234_567, "seconds": 2.5, "checks": [
        {"name": "format", "passed": True, "message": "ok", "warning": ""},
        {"name": "causality", "passed": True, "message": "outputs at t ignore inputs after t",
         "warning": "tolerance 1e-5 used"}]}
    return design_pb2.DesignTrace(
        operation=design_pb2.DESIGN_OPERATION_MUTATION, designer="llm",
        proposal="Replace attention with multi-scale retention.", review="Plausible; go.",
        review_rating=4.5, prompt_tokens=1500, completion_tokens=700,
        check_report_json=json.dumps(report),
        prompts=[design_pb2.PromptRecord(role="proposer", model="smollm2", prompt="Propose.",
                                         response="Use retention.", prompt_tokens=1000,
                                         completion_tokens=400, latency_seconds=1.5,
                                         stage="proposal", attempt=1),
                 design_pb2.PromptRecord(role="coder", model="qwen-coder", prompt="Write it.",
                                         response="class X: ...", prompt_tokens=500,
                                         completion_tokens=300, latency_seconds=2.0,
                                         stage="implement:X", attempt=1, unit="X")])


def build_world(proc: CoordinatorProcess) -> World:
    admin = proc.client()
    admin.create_experiment(EXPERIMENT, experiment_config(), description="dashboard test")
    worker = Coordinator(proc.address, admin.create_token("dash-worker", "worker").token, timeout=10)
    submitter_token = admin.create_token("dash-ui", "submitter").token
    worker.register_worker("sim-0", roles=["verify"], memory_bytes=8 << 30, cpu_count=2)
    seeds = [d.id for d in admin.list_designs(EXPERIMENT, limit=100)]
    # verify two seeds the way an agent does: lease, progress, complete
    for i in range(2):
        job = worker.lease_job(timeout=5, kinds=["verify"])
        assert job is not None, "no VERIFY job for a seed"
        worker.report_progress(job, 0.5, stage="train", metrics={"step": 5, "loss": 4.0})
        worker.complete(job, metrics={"cloze": 0.20 + 0.1 * i, "val_loss": 6.0 - i},
                        wall_seconds=10.0 + i, tokens_trained=65_536)
    parent = admin.get_design(seeds[0], full=True)
    child = admin.submit_design(
        EXPERIMENT, source=parent.source.replace("CONFIG = {", 'CONFIG = {"dash_variant": 1, ', 1),
        name="gpt-retention", parents=[parent.id], trace=child_trace())
    result = design_pb2.RungResult(
        rung="micro", metrics={"cloze": 0.42, "val_loss": 5.1}, stderr={"cloze": 0.03},
        train_curve=curve(9.0, 20, 10), val_curve=curve(9.2, 5, 40), tokens_per_second=12_345.0,
        peak_memory_bytes=300 << 20, tokens_trained=65_536, wall_seconds=8.0)
    admin._call(admin.evolution.ReportResult,
                evolution_pb2.ReportResultRequest(design_id=child.id, result=result))
    broken = admin.submit_design(
        EXPERIMENT, source=parent.source.replace("CONFIG = {", 'CONFIG = {"dash_broken": 1, ', 1),
        name="gpt-broken", parents=[parent.id])
    # two VERIFY jobs are left: the broken design's fails (its fault), the other keeps running
    jobs = [worker.lease_job(timeout=5, kinds=["verify"]) for _ in range(2)]
    assert all(jobs), "fewer than two VERIFY jobs left"
    failing = next(j for j in jobs if j.job.design_id == broken.id)
    worker.fail(failing, "loss is NaN at step 3", retryable=False, kind="design")
    running = next(j for j in jobs if j is not failing)
    return World(proc, admin, worker, submitter_token, seeds, child.id, running)


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    proc = CoordinatorProcess(tmp_path_factory.mktemp("dash") / "coordinator", free_tcp_port())
    proc.start()
    w = build_world(proc)
    stop = threading.Event()

    def keep_alive():  # the simulated worker heartbeats so its lease stays
        while not stop.wait(2.0):
            try:
                w.worker.heartbeat([w.running])
            except Exception:  # the coordinator may be stopping at the end
                return

    threading.Thread(target=keep_alive, daemon=True).start()
    yield w
    stop.set()
    proc.stop()


class UiProcess:
    """`genesys ui` on a free port, stopped at the end."""

    def __init__(self, address: str, token: str, log: Path, *args: str):
        env = dict(os.environ, GENESYS_TOKEN=token, GENESYS_COORDINATOR=address)
        env.pop("GENESYS_CONFIG", None)
        self.log = log
        with open(log, "ab") as err:
            self.proc = subprocess.Popen([*CLI, "ui", "--listen", "127.0.0.1:0", *args], stdout=subprocess.PIPE,
                                         stderr=err, text=True, env=env)
        line = self.proc.stdout.readline()
        if not line.startswith(READY):
            self.stop()
            raise AssertionError(f"genesys ui did not start: {line!r} {log.read_text()[-2000:]}")
        self.url = line[len(READY):].split()[0].rstrip("/")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def ui(world, tmp_path_factory):
    proc = UiProcess(world.coordinator.address, world.submitter_token,
                     tmp_path_factory.mktemp("ui") / "ui.log")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def ui_down(tmp_path_factory):
    """A dashboard whose coordinator address answers nothing."""
    proc = UiProcess(f"127.0.0.1:{free_tcp_port()}", "", tmp_path_factory.mktemp("ui") / "down.log")
    yield proc
    proc.stop()
