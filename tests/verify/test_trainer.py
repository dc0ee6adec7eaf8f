"""Trainer: schedule, bit-for-bit resume after SIGTERM, runtime monitor, DDP (gloo, 1 rank)."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from genesys.lmade import seeds
from genesys.lmade.monitor import MonitorConfig, RuntimeMonitor
from genesys.lmade.trainer import TrainConfig, TrainError, lr_lambda, train

BLOW_UP = '''"""A block that multiplies the residual stream by 1e12: activations overflow."""

import torch.nn as nn

from genesys.lmade import GAUBase


class BlowUp(GAUBase):
    """Y = X + 1e12 * W X."""

    def __init__(self, embed_dim, block_loc, kwarg_all, device=None, dtype=None, **kwargs):
        super().__init__(embed_dim, block_loc, kwarg_all)
        self.fc = nn.Linear(embed_dim, embed_dim, device=device, dtype=dtype)

    def _forward(self, X):
        return X + self.fc(X) * 1e12, {}


ROOT = "BlowUp"
CONFIG = {}
'''

SMALL = {"context": 32, "batch_size": 4, "progress_interval_s": 0.0}


def test_lr_schedule_warms_up_then_decays_to_a_tenth():
    f = lr_lambda(total_steps=1000, warmup_frac=0.02, min_ratio=0.1)
    assert f(0) == pytest.approx(1 / 20) and f(19) == pytest.approx(1.0)
    assert f(20) == pytest.approx(1.0)
    assert f(510) == pytest.approx(0.55, abs=0.01)
    assert f(999) == pytest.approx(0.1, abs=1e-4)
    assert all(f(s) >= f(s + 1) for s in range(20, 999))


def test_resume_after_sigterm_is_bit_for_bit(tiny_data, tmp_path):
    gpt = seeds.get("gpt")
    config = TrainConfig(tokens=32 * 4 * 16, eval_every=5, **SMALL)
    full = train(gpt, "micro", tiny_data, config, out_dir=tmp_path / "full")
    assert not full.aborted and full.steps == 16

    def kill_at_step_6(event: dict) -> None:
        if event["event"] == "progress" and event["step"] == 6:
            os.kill(os.getpid(), signal.SIGTERM)

    cut = train(gpt, "micro", tiny_data, config, out_dir=tmp_path / "cut", on_event=kill_at_step_6)
    assert cut.aborted and "SIGTERM" in cut.reason and cut.steps == 6
    events: list[dict] = []
    resumed = train(
        gpt,
        "micro",
        tiny_data,
        config,
        out_dir=tmp_path / "cut",
        resume=True,
        on_event=events.append,
    )
    assert events[0]["event"] == "start" and events[0]["resumed_from_step"] == 6
    assert resumed.steps == 16 and not resumed.aborted
    assert resumed.train_loss == full.train_loss
    assert resumed.loss_curve == full.loss_curve and resumed.val_curve == full.val_curve
    for (name, a), b in zip(
        full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_resume_refuses_a_checkpoint_of_another_run(tiny_data, tmp_path):
    config = TrainConfig(tokens=32 * 4 * 2, **SMALL)
    train(seeds.get("gpt"), "micro", tiny_data, config, out_dir=tmp_path)
    other = TrainConfig(tokens=32 * 4 * 2, seed=7, **SMALL)
    with pytest.raises(TrainError, match="another run"):
        train(seeds.get("gpt"), "micro", tiny_data, other, out_dir=tmp_path, resume=True)


def test_monitor_aborts_a_design_that_blows_up(tiny_data):
    events: list[dict] = []
    result = train(
        BLOW_UP,
        "micro",
        tiny_data,
        TrainConfig(tokens=32 * 4 * 20, **SMALL),
        on_event=events.append,
    )
    assert result.aborted and result.steps == 1
    assert "loss is nan" in result.reason and result.failure_kind == "design"
    assert [e for e in events if e["event"] == "abort"][0]["reason"] == result.reason


@pytest.mark.parametrize(
    ("losses", "norms", "times", "expected"),
    [
        ([9.0] * 5 + [40.0], [1.0] * 6, [0.1] * 6, "loss exploded"),
        ([9.0 - 0.1 * i for i in range(30)] + [10.0] * 30, [1.0] * 60, [0.1] * 60, "loss diverged"),
        ([5.0] * 40, [1.0] * 30 + [500.0] * 10, [0.1] * 40, "gradient norm exploded"),
        ([5.0] * 60, [1.0] * 60, [0.1] * 20 + [5.0] * 40, "step time"),
        ([5.0] * 60, [1.0] * 60, [0.1] * 21 + [5.0, 0.1, 0.1] * 13, None),  # spikes alone are fine
    ],
)
def test_monitor_rules(losses, norms, times, expected):
    monitor = RuntimeMonitor(vocab_size=8192, config=MonitorConfig())
    reason = None
    for step, (loss, norm, t) in enumerate(zip(losses, norms, times, strict=True)):
        reason = monitor.check(step, loss, norm, t)
        if reason:
            break
    assert (reason is None) if expected is None else (expected in reason)
    if reason:
        assert reason.kind == ("infrastructure" if expected == "step time" else "design")


QUICK_TIME_RULE = MonitorConfig(warmup_steps=1, baseline_steps=3, time_window=4, slowdown_factor=4)


def _slowed_from_step(monkeypatch, step: int, slow_down) -> None:
    """Every training step from `step` on also runs `slow_down()`."""
    from genesys.lmade.trainer import Trainer

    original = Trainer._train_step

    def slowed(self, at: int):
        out = original(self, at)
        if at >= step:
            slow_down()
        return out

    monkeypatch.setattr(Trainer, "_train_step", slowed)


def test_a_loaded_host_does_not_abort_a_healthy_run(tiny_data, monkeypatch):
    """Steps that wait (the host is busy elsewhere) cost wall time, not the step's CPU time."""
    import time

    _slowed_from_step(monkeypatch, 5, lambda: time.sleep(0.15))
    config = TrainConfig(tokens=32 * 4 * 14, monitor=QUICK_TIME_RULE, **SMALL)
    result = train(seeds.get("gpt"), "micro", tiny_data, config)
    assert not result.aborted and result.steps == 14
    assert result.wall_s > 9 * 0.15


def test_a_step_doing_more_work_stops_as_an_infrastructure_failure(tiny_data, monkeypatch):
    import time

    def spin() -> None:
        until = time.process_time() + 0.3
        while time.process_time() < until:
            pass

    _slowed_from_step(monkeypatch, 5, spin)
    config = TrainConfig(tokens=32 * 4 * 30, monitor=QUICK_TIME_RULE, **SMALL)
    result = train(seeds.get("gpt"), "micro", tiny_data, config)
    assert result.aborted and "step time" in result.reason
    assert result.failure_kind == "infrastructure" and result.steps < 30


def test_result_keeps_curves_throughput_memory_and_val_stderr(tiny_data):
    config = TrainConfig(tokens=32 * 4 * 12, eval_every=4, eval_windows=8, **SMALL)
    result = train(seeds.get("gpt"), "micro", tiny_data, config).to_dict()
    assert [p["step"] for p in result["loss_curve"]] == list(range(1, 13))
    assert [p["tokens"] for p in result["val_curve"]] == [32 * 4 * s for s in (4, 8, 12)]
    assert result["val_loss"] == result["val_curve"][-1]["loss"]
    assert 0 < result["val_loss_stderr"] < result["val_loss"] / 10
    assert result["tokens_per_s"] > 0 and result["peak_memory_bytes"] > 1 << 20
    assert result["failure_kind"] is None


def test_curves_are_bin_means_of_at_most_the_point_limit():
    from genesys.lmade.trainer import downsample, mean_and_stderr

    curve = [(s, 10 * s, float(s)) for s in range(1, 1001)]
    points = downsample(curve, points=200)
    assert len(points) == 200 and points[0] == {"step": 5, "loss": 3.0, "tokens": 50}
    mean, se = mean_and_stderr([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and se == pytest.approx((5 / 3) ** 0.5 / 2)


def test_ddp_path_with_one_gloo_rank_matches_plain_training(tiny_data, free_port, monkeypatch):
    import torch.distributed as dist

    config = TrainConfig(tokens=32 * 4 * 3, device="cpu", **SMALL)
    plain = train(seeds.get("gpt"), "micro", tiny_data, config)
    env = {
        "GENESYS_FORCE_DDP": "1",
        "RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        ddp = train(seeds.get("gpt"), "micro", tiny_data, config)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    assert ddp.world_size == 1 and ddp.train_loss == pytest.approx(plain.train_loss, rel=1e-5)
