"""Real coordinator and agent processes on 127.0.0.1 for the agent's integration tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from genesys.client.coordinator import Coordinator
from genesys.v1 import experiment_pb2

CLI = [sys.executable, "-c", "from genesys.cli import main; main()"]
READY = "genesys-coordinator ready address="
SERVER_ENV = {"GENESYS_SCHEDULER_REAP_INTERVAL_SECONDS": "0.5",
              "GENESYS_SCHEDULER_HEARTBEAT_SECONDS": "1",
              "GENESYS_SCHEDULER_DEAD_AFTER_SECONDS": "60"}


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CoordinatorProcess:
    """`genesys server start` on a fixed port, so it can be killed and restarted."""

    def __init__(self, data_dir: Path, port: int):
        self.data_dir, self.port = data_dir, port
        self.address = f"127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.log = data_dir.parent / f"{data_dir.name}.log"

    def command(self) -> tuple[list[str], dict[str, str]]:
        """The command line and environment that start the server."""
        return ([*CLI, "server", "start", "--listen", self.address, "--data-dir", str(self.data_dir)],
                os.environ | SERVER_ENV)

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd, env = self.command()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        ready = threading.Event()

        def read() -> None:
            for line in self.proc.stdout:
                if line.startswith(READY):
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(timeout):
            self.kill()
            raise AssertionError(f"coordinator did not start: {self.log.read_text()[-2000:]}")

    @property
    def token(self) -> str:
        return (self.data_dir / "token").read_text().strip()

    def client(self) -> Coordinator:
        return Coordinator(self.address, self.token, timeout=10.0)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class AgentProcess:
    """`genesys agent start` with simulated VERIFY jobs (--dry-run) unless told otherwise."""

    def __init__(self, address: str, token: str, work_dir: Path, *args: str):
        self.work_dir = work_dir
        self.log = work_dir.parent / f"{work_dir.name}.log"
        self.cmd = [*CLI, "agent", "start", "--coordinator", address, "--token", token,
                    "--gpus", "none", "--work-dir", str(work_dir),
                    "--data-dir", str(work_dir.parent / "data"), "--threads", "1", *args]
        self.proc: subprocess.Popen | None = None

    def start(self) -> AgentProcess:
        self.work_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=log)
        return self

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def kill9(self) -> None:
        """SIGKILL the agent and everything it started (a machine dying)."""
        victims = [self.proc.pid, *descendants(self.proc.pid)]
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()

    def terminate(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill9()


def verify_only_config(lease_s: int, budget: int = 4) -> experiment_pb2.ExperimentConfig:
    """A micro rung, no DESIGN jobs (max_designs 1 is reached by the seed)."""
    config = experiment_pb2.ExperimentConfig()
    config.ladder.rungs.add(name="micro", budget=budget, lease_seconds=lease_s)
    config.jobs.lease_seconds = lease_s
    config.design_mix.max_designs = 1
    return config
