"""Agent parts that need no coordinator: outbox, device selection, progress events."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from genesys.gpu_agent import devices
from genesys.gpu_agent.job import progress_of
from genesys.gpu_agent.outbox import Outbox, Report


def test_outbox_survives_a_restart_and_forgets_only_settled_reports(tmp_path: Path):
    box = Outbox(tmp_path / "outbox")
    box.put(Report("j1", 3, "complete", kind="VERIFY", result={"metrics": {"a": 0.5}}))
    box.put(Report("j2", 1, "fail", error="boom", retryable=False))
    box.put(Report("j1", 3, "complete", kind="VERIFY", design_id="d9"))  # same lease: replaced
    reopened = Outbox(tmp_path / "outbox")
    pending = {r.key: r for r in reopened.pending()}
    assert set(pending) == {"j1-3", "j2-1"} and pending["j1-3"].design_id == "d9"
    reopened.done(pending["j2-1"])
    assert [r.key for r in Outbox(tmp_path / "outbox").pending()] == ["j1-3"]


def test_outbox_sets_aside_unreadable_reports(tmp_path: Path):
    box = Outbox(tmp_path)
    (tmp_path / "broken-1.json").write_text("{not json")
    assert box.pending() == [] and (tmp_path / "broken-1.bad").exists()


def test_gpu_spec_parsing_and_cpu_fallback(monkeypatch):
    assert devices.parse_gpu_spec("all") is None
    assert devices.parse_gpu_spec("none") == []
    assert devices.parse_gpu_spec("0, 2") == [0, 2]
    with pytest.raises(ValueError, match="--gpus"):
        devices.parse_gpu_spec("first")
    monkeypatch.setattr(devices, "cuda_devices", lambda: [])
    assert [d.kind for d in devices.select_devices("all")] == ["cpu"]
    gpus = [devices.DeviceInfo("cuda", i, "H100", 80 << 30) for i in range(2)]
    monkeypatch.setattr(devices, "cuda_devices", lambda: gpus)
    assert [d.index for d in devices.select_devices("1")] == [1]
    assert [d.kind for d in devices.select_devices("none")] == ["cpu"]
    with pytest.raises(ValueError, match=r"\[5\]"):
        devices.select_devices("5")


def test_progress_event_from_trainer_event():
    event = {"event": "progress", "step": 5, "total_steps": 20, "loss": 3.5,
             "tokens_per_s": 1200.0, "grad_norm": 0.7}
    progress = progress_of("j1", event)
    assert progress.job_id == "j1" and progress.stage == "progress"
    assert progress.fraction == pytest.approx(0.25)
    assert json.loads(progress.metrics_json) == {"step": 5, "total_steps": 20, "loss": 3.5,
                                                 "tokens_per_s": 1200.0}
    assert progress_of("j1", {"stage": "check", "fraction": 7}).fraction == 1.0


def test_agent_and_demo_processes_never_import_torch():
    code = ("import sys, genesys.gpu_agent.agent, genesys.gpu_agent.cli, genesys.gpu_agent.demo; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
