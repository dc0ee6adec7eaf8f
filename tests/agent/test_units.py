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


def test_verify_result_carries_bits_per_byte_val_loss_and_their_standard_errors():
    from genesys.gpu_agent.job import eval_tasks, verify_metrics

    assert eval_tasks(["bits_per_byte", "val_loss", "genesys_cloze"]) == [
        "genesys_heldout_ppl", "genesys_cloze"]
    value = {"train": {"val_loss": 6.2, "val_loss_stderr": 0.03},
             "eval": {"tasks": {"genesys_heldout_ppl": {"bits_per_byte": 2.41}},
                      "normalised": {"genesys_cloze": 0.1, "genesys_nextsent": float("nan")}},
             "metrics": {"genesys_cloze": 0.12}, "stderr": {"genesys_cloze": 0.02,
                                                           "bits_per_byte": 0.004, "ghost": 1.0}}
    metrics, stderr = verify_metrics(value)
    assert metrics == {"genesys_cloze": 0.12, "bits_per_byte": 2.41, "val_loss": 6.2}
    assert stderr == {"genesys_cloze": 0.02, "bits_per_byte": 0.004, "val_loss": 0.03}


def test_failures_say_whether_the_design_or_the_host_caused_them(tmp_path: Path):
    from genesys.gpu_agent.job import (
        DESIGN,
        INFRASTRUCTURE,
        JobRun,
        JobSettings,
        sandbox_failure_kind,
        verify_failure_kind,
    )
    from genesys.lmade.sandbox import SandboxResult
    from genesys.v1 import job_pb2

    slow = {"status": "aborted", "train": {"failure_kind": "infrastructure", "reason": "step time"}}
    nan = {"status": "aborted", "train": {"failure_kind": "design", "reason": "loss is nan"}}
    assert verify_failure_kind(slow) == INFRASTRUCTURE and verify_failure_kind(nan) == DESIGN
    assert verify_failure_kind({"status": "interrupted"}) == INFRASTRUCTURE
    assert sandbox_failure_kind(SandboxResult(False, reason="signal")) == INFRASTRUCTURE
    assert sandbox_failure_kind(SandboxResult(False, reason="blocked")) == DESIGN
    assert sandbox_failure_kind(SandboxResult(False, reason="exception",
                                              error="ZeroDivisionError")) == DESIGN
    assert sandbox_failure_kind(SandboxResult(
        False, reason="exception", error="RuntimeError: DefaultCPUAllocator: can't allocate memory"
    )) == INFRASTRUCTURE
    settings = JobSettings(tmp_path, "data", "w1", None, None, 60.0, 60.0)
    job = job_pb2.Job(id="j1", kind=job_pb2.JOB_KIND_VERIFY, design_id="d1")
    run = JobRun(None, settings, job, job_pb2.Lease(fencing_token=2), [], lambda *a: None)
    report = run._ending("step time 10x", retryable=True, kind=INFRASTRUCTURE)
    assert (report.action, report.retryable, report.failure_kind) == ("fail", True, INFRASTRUCTURE)


def test_demo_experiment_ranks_on_bits_per_byte_and_shows_intervals():
    from genesys.gpu_agent.demo import DemoSettings, experiment_config, format_leaderboard
    from genesys.server.experiment_config import validate, with_defaults
    from genesys.server.selection import knobs

    config = experiment_config(DemoSettings(training_seed=7), 11)
    validate("demo", with_defaults(config, [], 60, 3, 4))
    assert config.benchmarks[0].name == "bits_per_byte" and config.benchmarks[0].lower_is_better
    assert knobs(config).training_seed == 7
    rows = [{"rank": 1, "name": "gpt-m1a2b3c", "label": "gpt+MultiScaleRetention", "fitness": 0.8,
             "fitness_stderr": 0.05, "confidence": 3, "seed": False, "quadrant": "good_unconfident",
             "metrics": {"bits_per_byte": 2.412}, "stderr": {"bits_per_byte": 0.004}},
            {"rank": 2, "name": "gpt", "label": "", "fitness": 0.5, "confidence": 3, "seed": True,
             "quadrant": "poor_unconfident", "metrics": {}}]
    table = format_leaderboard(rows)
    assert "gpt+MultiScaleRetention" in table and "0.800±0.050" in table and "2.412±0.004" in table
    assert "gpt (seed)" in table
