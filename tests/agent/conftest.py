"""Fixtures: a coordinator process and an agent factory (see procs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .procs import AgentProcess, CoordinatorProcess, free_tcp_port


@pytest.fixture
def work_root(searchable_tmp_path: Path) -> Path:
    return searchable_tmp_path


@pytest.fixture
def coordinator(work_root: Path):
    proc = CoordinatorProcess(work_root / "coordinator", free_tcp_port())
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def agents(work_root: Path, coordinator: CoordinatorProcess):
    """Factory: agents(name, *args) starts an agent; all are stopped at the end."""
    started: list[AgentProcess] = []

    def make(name: str, *args: str, token: str | None = None, start: bool = True) -> AgentProcess:
        agent = AgentProcess(coordinator.address, token or coordinator.token, work_root / name, *args)
        started.append(agent)
        return agent.start() if start else agent

    yield make
    for agent in started:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.kill9()
